#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), from the repository root, with `.device/` carried:
#   run(command="bash training/device_train.sh", carry=[".device"], timeout_s=330)
# The shipped reader's base recipe: full fine-tuning from the base weights, bf16, 384-token windows
# as inference reads them, two passes over the training questions plus negatives, 14 worker
# processes making the windows (one process cannot keep the GPU busy). On one H100 it ran 176k
# windows in 3.3 minutes. With `prepare --pool`, SQuAD 2.0's people-written unanswerable
# questions are mixed in from the first step (POOL_SHARE), which the shipped weights only got in a
# short CPU continuation afterwards. Stops at MINUTES whatever happens, so the call ends inside its time limit.
# The float16 delta comes back split under 16 MiB ($OUT/reader-delta-N.safetensors) with the
# run's train_state.json, reader.json and log. Afterwards, here:
#   python -m training.device join --parts <files_at> --prefix reader- --out runs/reader
# then calibrate and ship as after a CPU run (README "Training the reader").
set -uo pipefail
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
: "${OUT:?the device tool sets OUT}"
EPOCHS=${EPOCHS:-2}
MINUTES=${MINUTES:-3.3}
WORKERS=${WORKERS:-14}
POOL_SHARE=${POOL_SHARE:-0.15}
data=$(ls .device/*.json.gz | head -n 1)
# SQuAD 2.0's people-written unanswerable questions from the first step, when prepare was given
# --pool: 15% of the windows (~26k of 176k, about 8 passes over the 9 training articles' 3.3k
# questions), the rest SQuAD 1.0 with its made-up negatives; 4 pool articles stay out of training.
pool_args=()
[ -f .device/pool.json ] && pool_args=(--pool .device/pool.json --pool-share "$POOL_SHARE")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
rm -rf /tmp/reader  # a warm machine keeps /tmp: never resume another call's run by accident
python3 -m training.reader --data "$data" --base .device/base --out /tmp/reader --device "${DEVICE:-cuda}" \
  --mode full --batch-size 32 --max-length 384 --warmup 200 --threads 2 --workers "$WORKERS" \
  --probe-every 2000 --probe-size "${PROBE_SIZE:-1000}" --save-every 1000 \
  --epochs "$EPOCHS" --lr 1e-4 --max-minutes "$MINUTES" "${pool_args[@]}" >"$OUT/reader.log" 2>&1
echo "training exit $?"
grep -E '^(probe|stopped|Traceback)|Error|pool' "$OUT/reader.log"
[ -f /tmp/reader/delta.safetensors ] && python3 -m training.device split /tmp/reader "$OUT" --prefix reader-
ls -la "$OUT"

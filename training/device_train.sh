#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), from the repository root, with `.device/` carried:
#   run(command="bash training/device_train.sh", carry=[".device"], timeout_s=330)
# The shipped reader's recipe: full fine-tuning from the base weights, bf16, 384-token windows as
# inference reads them, two passes over the training questions plus negatives, 14 worker processes
# making the windows (one process cannot keep the GPU busy). On one H100 it ran 176k windows in
# 3.3 minutes. Stops at MINUTES whatever happens, so the call ends inside its time limit.
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
data=$(ls .device/*.json.gz | head -n 1)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
rm -rf /tmp/reader  # a warm machine keeps /tmp: never resume another call's run by accident
python3 -m training.reader --data "$data" --base .device/base --out /tmp/reader --device "${DEVICE:-cuda}" \
  --mode full --batch-size 32 --max-length 384 --warmup 200 --threads 2 --workers "$WORKERS" \
  --probe-every 2000 --probe-size "${PROBE_SIZE:-1000}" --save-every 1000 \
  --epochs "$EPOCHS" --lr 1e-4 --max-minutes "$MINUTES" >"$OUT/reader.log" 2>&1
echo "training exit $?"
grep -E '^(probe|stopped|Traceback)|Error' "$OUT/reader.log"
[ -f /tmp/reader/delta.safetensors ] && python3 -m training.device split /tmp/reader "$OUT" --prefix reader-
ls -la "$OUT"

#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), from the repository root, with `.device/` carried:
#   run(command="bash training/device_train.sh", carry=[".device"], timeout_s=540)
# Three full fine-tuning runs side by side on the one GPU (bf16, 384-token windows like inference,
# each fed by its own worker processes), each with its schedule fitted into MINUTES. Each run's
# float16 delta comes back split under 16 MiB ($OUT/<run>-delta-N.safetensors), and every run's
# train_state.json, reader.json and log in $OUT/runs.tar: at most 8 files, 64 MiB, as the tool allows.
# Afterwards, here: tar -xf <files_at>/runs.tar -C <files_at copy>; then
#   python -m training.device join --parts <folder> --prefix <run>- --out runs/<run>
# and pick the run by its probe curve (held-out training articles), never by the dev sets.
set -uo pipefail
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
: "${OUT:?the device tool sets OUT}"
MINUTES=${MINUTES:-6}
WORKERS=${WORKERS:-4}
data=$(ls .device/*.json.gz | head -n 1)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
mkdir -p /tmp/logs /tmp/parts

train() {  # name, then training.reader options
  local name=$1; shift
  python3 -m training.reader --data "$data" --base .device/base --out "/tmp/$name" --device "${DEVICE:-cuda}" \
    --mode full --batch-size 32 --max-length 384 --warmup 200 --threads 2 --workers "$WORKERS" \
    --probe-every 1000 --probe-size "${PROBE_SIZE:-1000}" --save-every 500 \
    --schedule-minutes "$MINUTES" --max-minutes "$(python3 -c "print($MINUTES + 0.5)")" "$@" \
    >"/tmp/logs/$name.log" 2>&1
  echo "$name finished: exit $?"
  grep -E '^(probe|schedule|stopped|Traceback)|Error' "/tmp/logs/$name.log" | sed "s/^/$name: /"
}

train A --epochs 2 --lr 1e-4 --negative-rate 0.4 &
train B --epochs 4 --lr 1e-4 --negative-rate 0.4 &
train C --epochs 3 --lr 5e-5 --negative-rate 0.5 &
sleep "${PEEK_AFTER:-90}"
tail -n 2 /tmp/logs/*.log
wait

for name in A B C; do
  if [ -f "/tmp/$name/delta.safetensors" ]; then
    python3 -m training.device split "/tmp/$name" /tmp/parts --prefix "$name-" && mv /tmp/parts/"$name"-delta-*.safetensors "$OUT"/
  fi
done
cp /tmp/logs/*.log /tmp/parts/ 2>/dev/null
tar -cf "$OUT/runs.tar" -C /tmp/parts .
ls -la "$OUT"

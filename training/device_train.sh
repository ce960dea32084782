#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), from the repository root, with `.device/` carried:
#   run(command="bash training/device_train.sh", carry=[".device"], timeout_s=600)
# Full fine-tuning, bf16, two passes over the training data from the base weights, then the
# float16 delta split into files the device tool can bring back ($OUT, under 16 MiB each).
# Afterwards, here: python -m training.device join --parts <files_at> --out runs/reader
set -euo pipefail
export PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
: "${OUT:?the device tool sets OUT}"
EPOCHS=${EPOCHS:-2}
MINUTES=${MINUTES:-7}
data=$(ls .device/*.json.gz | head -n 1)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m training.reader --data "$data" --base .device/base --out /tmp/reader --device cuda \
  --mode full --lr 1e-4 --batch-size 32 --epochs "$EPOCHS" --warmup 200 \
  --probe-every 1000 --probe-size 400 --save-every 1000 --max-minutes "$MINUTES" 2>&1 | tee "$OUT/train.log"
python3 -m training.device split /tmp/reader "$OUT"
ls -la "$OUT"

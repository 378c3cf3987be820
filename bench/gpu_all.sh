#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md in one call of at most 8 minutes (issue 25): evaluation
# against plain encode at fp32 and bf16 (bench/gpu_eval.py), training against the
# sentence-transformers trainer at bf16 and fp32 (bench/gpu_train.py, batch 100, length 512, loss
# trajectories in the records). Records are appended to results/gpu-*.jsonl, named by the card.
#
#   bash bench/gpu_all.sh            # on the lent machine, from the repository root, venv active
#
# Budget (H200 figures of 2026-11-26): eval ≈ 3 min, training 2 × 2 arms × 80 steps ≈ 3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
card=$(python -c "import torch; print(torch.cuda.get_device_name(0).split()[-1].lower() if torch.cuda.is_available() else '')")
if [ -z "$card" ]; then
  echo "no CUDA device here: nothing to measure" >&2
  exit 1
fi
data=${XLBENCH_DATA_DIR:-../shared/data/lareqa}
stamp=$(date -u +%Y-%m-%dT%H:%MZ)
echo "card: $card, started $stamp"
timeout 240 python bench/gpu_eval.py --device cuda --batches 128,256,512 --out "results/gpu-eval-$card.jsonl"
for precision in bf16 fp32; do
  timeout 110 python bench/gpu_train.py --data-dir "$data" --device cuda --steps 80 --skip 10 \
    --precision "$precision" --out "results/gpu-train-$card.jsonl"
done
echo "done $(date -u +%Y-%m-%dT%H:%MZ); records in results/gpu-*-$card.jsonl"

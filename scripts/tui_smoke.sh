#!/usr/bin/env bash
# Drive the terminal app as a person would, in tmux, against a real headless run:
#   1. start a real fine-tuning run (tiny model, CPU) with `xlbench run --headless` in the background;
#   2. open `xlbench` in a 160×48 tmux pane, open the run, watch its loss curve grow;
#   3. open the heatmap once the run has evaluated, then compare it with its "before" evaluation.
# Pane captures land in $CAPTURES (default ./tui-smoke); the script fails if the curve does not grow.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
captures=$(realpath -m "${CAPTURES:-tui-smoke}")
work=$(mktemp -d)
trap 'tmux kill-session -t xlsmoke 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
mkdir -p "$captures"
export XLBENCH_HOME="$work" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false XLBENCH_PLUGINS_DIR="$here/plugins"
cd "$work"

echo "building a tiny model in $work"
"$python" - <<'PY'
from xlbench.core.data.sources import XquadR
from xlbench.core.encoders.tiny import build_tiny_model
ds = XquadR().load(languages=["de", "en", "es"])
build_tiny_model("tiny", ds.query_text[::4] + [t[:300] for t in ds.cand_text[::8]])
PY
cat > smoke.toml <<TOML
name = "smoke: tiny hybrid"
[model]
model = "$work/tiny"
max_seq_length = 48
[data]
kind = "xquad-r"
articles = "0:36"
languages = ["de", "en", "es"]
[train]
batch_size = 16
max_steps = 400
lr = 1e-3
val_every = 100
checkpoint_every = 100
[sampler]
name = "hybrid"
[eval]
articles = "36:48"
languages = ["de", "en", "es"]
candidate_text = "sentence"
before = true
TOML
"$python" -m xlbench run --headless --config smoke.toml > run.log 2>&1 &

capture() { tmux capture-pane -p -t xlsmoke > "$captures/$1.txt"; echo "captured $1"; }
step_of_run() { "$python" -c "from xlbench.store.store import Store; print(max([p.step for p in Store().train_points(1)] or [0]))"; }
wait_until() { for _ in $(seq 1 "$2"); do eval "$1" && return 0; sleep 1; done; echo "timed out: $1" >&2; return 1; }

wait_until '[ -f db/xlbench.sqlite ]' 60
tmux new-session -d -s xlsmoke -x 160 -y 48 "$python -m xlbench"
sleep 3
capture 01-runs
wait_until '[ "$(step_of_run)" -gt 0 ]' 180
tmux send-keys -t xlsmoke /              # filter the table down to the training run, open it
sleep 1
tmux send-keys -t xlsmoke smoke Enter
sleep 1
tmux send-keys -t xlsmoke Enter
sleep 3
capture 02-run-loss-early
s1=$(step_of_run)
wait_until '[ "$(step_of_run)" -ge $((s1 + 60)) ]' 240
sleep 2
capture 03-run-loss-later
grep -q "loss (train" "$captures/03-run-loss-later.txt"
# the screen followed the worker: the run's step counter (and the curve's step axis) moved on
"$python" - "$captures/02-run-loss-early.txt" "$captures/03-run-loss-later.txt" <<'PY'
import re, sys
def step(path):
    found = re.findall(r"(\d+)/400", open(path).read())
    return int(found[0]) if found else 0
early, later = step(sys.argv[1]), step(sys.argv[2])
print(f"steps shown: {early} → {later}")
sys.exit(0 if later > early > 0 else 1)
PY
wait_until '"$python" -c "from xlbench.store.store import Store; import sys; sys.exit(Store().get_run(1).status != \"finished\")"' 600
sleep 3
tmux send-keys -t xlsmoke 2
sleep 2
capture 04-run-heatmap
tmux send-keys -t xlsmoke 3
sleep 1
capture 05-run-bias
tmux send-keys -t xlsmoke Escape
sleep 1
tmux send-keys -t xlsmoke Escape         # clear the filter: the run and its "before" evaluation
sleep 2
tmux send-keys -t xlsmoke space Down space c
sleep 8
capture 06-compare
tmux send-keys -t xlsmoke 3
sleep 1
capture 07-compare-delta
tmux send-keys -t xlsmoke q
echo "captures in $captures"

#!/usr/bin/env bash
# One call of the device tool for Burda et al.'s four `standard` cells (results/README.md,
# "Burda et al.'s protocol"): evaluate each run as it stands at k = 5000 on all 10,000 test
# images, then continue the runs named in TRAIN to EPOCHS epochs (their schedule's next stage:
# 1 + 3 + 9 + 27 + 81 = 121), one at a time, and evaluate each at the end the same way.
# The runs are copied once from SRC (run directories with their newest checkpoint) to a work
# folder outside the repository, so a second call on the same warm machine resumes them; a
# run cut off at DEADLINE_S keeps its finished epochs.  Every evaluation, every run's
# metrics.jsonl and, at the end, the newest checkpoint of each run trained here go into one
# archive, OUTDIR/burda.tar.gz, rewritten every 20 s (the device tool brings back only a few
# files, and a call cut short still returns the last archive).
# Usage: [EPOCHS=121] [K=5000] [DEV=cuda] [TRAIN="run ..."] [EVAL_FIRST=1] bash results/gpu_burda.sh SRC OUTDIR [DEADLINE_S]
#        (VAELAB_DATA holds mnist.pkl.gz)
set -u
SRC=${1:?usage: gpu_burda.sh SRC OUTDIR [DEADLINE_S]}
ARCHIVE=${2:?usage: gpu_burda.sh SRC OUTDIR [DEADLINE_S]}/burda.tar.gz
OUTDIR=${STAGE:-/tmp/vaelab-burda-out}  # staged here, archived into ARCHIVE
DEADLINE=${3:-500}
EPOCHS=${EPOCHS:-121}
K=${K:-5000} DEV=${DEV:-cuda}
PY=${PY:-python3}
W=${WORK:-/tmp/vaelab-burda}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR/evals" "$OUTDIR/runs" "$W" "$(dirname "$ARCHIVE")"; T0=$(date +%s)
archive() { tar czf "$ARCHIVE.tmp" -C "$OUTDIR" . && mv "$ARCHIVE.tmp" "$ARCHIVE"; }
(while sleep 20; do archive; done) & ARCHIVER=$!
el() { echo $(( $(date +%s) - T0 )); }
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__)"; git rev-parse HEAD 2>/dev/null; } >> "$OUTDIR/machine.txt" 2>&1
tail -4 "$OUTDIR/machine.txt"
for d in "$SRC"/*/; do r=$(basename "$d"); [ -d "$W/$r" ] || cp -r "$d" "$W/$r"; done
epoch() { tail -1 "$W/$1/metrics.jsonl" | $PY -c "import json,sys; print(json.load(sys.stdin)['epoch'])"; }
evaluate() {  # run -> OUTDIR/evals/RUN-eEPOCH.json
  local r=$1 e; e=$(epoch "$r")
  [ -f "$OUTDIR/evals/$r-e$e.json" ] && return
  $PY -m vaelab.cli eval "$W/$r" --k "$K" --all-test --json --device "$DEV" > "$OUTDIR/evals/$r-e$e.json.tmp" 2> "$OUTDIR/evals/$r-e$e.log" \
    && mv "$OUTDIR/evals/$r-e$e.json.tmp" "$OUTDIR/evals/$r-e$e.json"
  echo "t=$(el)s eval $r epoch $e: $(grep -o '"log_likelihood": [-0-9.]*' "$OUTDIR/evals/$r-e$e.json" 2>/dev/null)"
}
collect() { for d in "$W"/*/; do r=$(basename "$d"); mkdir -p "$OUTDIR/runs/$r"; cp "$d/metrics.jsonl" "$d/config.json" "$OUTDIR/runs/$r/"; done; }
if [ "${EVAL_FIRST:-1}" = 1 ]; then for d in "$W"/*/; do evaluate "$(basename "$d")"; done; fi
for r in ${TRAIN:-}; do
  [ "$(epoch "$r")" -ge "$EPOCHS" ] && { evaluate "$r"; continue; }
  left=$((DEADLINE - $(el))); [ $left -le 30 ] && { echo "deadline: $r not started"; break; }
  $PY -m vaelab.cli train --resume --out "$W/$r" --epochs "$EPOCHS" --device "$DEV" --quiet >> "$OUTDIR/train-$r.log" 2>&1 &
  P=$!
  while kill -0 $P 2>/dev/null; do
    sleep 10; echo "t=$(el)s $r epoch $(epoch "$r"): $(tail -1 "$W/$r/metrics.jsonl" | cut -c1-150)"
    if [ $(el) -ge "$DEADLINE" ]; then echo "deadline: stopping $r"; kill -INT $P; sleep 8; kill -9 $P 2>/dev/null; break; fi
  done
  wait $P 2>/dev/null; tail -2 "$OUTDIR/train-$r.log"
  [ "$(epoch "$r")" -ge "$EPOCHS" ] && evaluate "$r"
done
collect
for r in ${TRAIN:-}; do  # the newest checkpoint of each run trained here, for the CPU's budget curve
  c=$(ls "$W/$r/checkpoints/"*.safetensors | tail -1); cp "$c" "${c%.safetensors}.json" "$OUTDIR/runs/$r/"
done
kill $ARCHIVER 2>/dev/null; archive
echo "t=$(el)s total"; ls -la "$OUTDIR" "$OUTDIR/evals"

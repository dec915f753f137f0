#!/usr/bin/env bash
# One call of the device tool: a vaelab sweep of EXPERIMENT at the paper effort on the lent GPU,
# stopped DEADLINE_S seconds after the start.  Runs one at a time (the runner's default on a
# GPU: runs sharing one GPU time-slice it, BENCHMARKS.md), CUDA graphs on (their default), the
# sweep evaluating each finished run itself (k = 5000, all 10,000 test images).  Optional first
# step BENCH=S: benchmarks/bench.py --quick --device cuda with a budget of S seconds.  The sweep
# directory (store, configs, learning curves, selections, evaluations, and at the end its
# report with the figures; no weights) is archived into OUTDIR every 45 s and at the end, so a
# call cut short still returns what finished; a second call on the same warm machine resumes
# the same sweep directory.  Leave REPORT_S (default 40) seconds after DEADLINE_S.
# Usage: [BENCH=60] [WORKERS=1] bash results/gpu_sweep.sh EXPERIMENT OUTDIR [DEADLINE_S]
#        (VAELAB_DATA holds mnist.pkl.gz)
set -u
EXP=${1:?usage: gpu_sweep.sh EXPERIMENT OUTDIR [DEADLINE_S]}
OUTDIR=${2:?usage: gpu_sweep.sh EXPERIMENT OUTDIR [DEADLINE_S]}
DEADLINE=${3:-500}
WORKERS=${WORKERS:-1}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR"; T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__)"; git rev-parse HEAD 2>/dev/null; git status --short | head; } >> "$OUTDIR/machine.txt" 2>&1
tail -6 "$OUTDIR/machine.txt"
if [ -n "${BENCH:-}" ]; then
  timeout $((BENCH + 60)) $PY benchmarks/bench.py --quick --device cuda --budget "$BENCH" --out '' \
      --json "$OUTDIR/bench-cuda.json" > "$OUTDIR/bench-cuda.log" 2>&1 || echo "bench failed: rc $?"
  tail -25 "$OUTDIR/bench-cuda.log"; echo "t=$(el)s bench done"
fi
S=/tmp/vaelab-sweeps/$(basename "$EXP" .yaml)
TAR="$OUTDIR/$(basename "$S").tar.gz"
snap() { (cd "$S" && tar czf "$TAR.tmp" --exclude='checkpoints' --exclude='*.safetensors' --exclude='events' . \
          && mv "$TAR.tmp" "$TAR") 2>/dev/null; }
$PY -m vaelab.cli sweep "$EXP" --effort paper --set train.device=cuda --set eval.batch_size=20 \
    --workers "$WORKERS" --quiet --out "$S" >> "$OUTDIR/sweep.log" 2>&1 &
P=$!
n=0
while kill -0 $P 2>/dev/null; do
  sleep 15; n=$((n + 1))
  echo "t=$(el)s $(for d in "$S"/runs/*; do [ -f "$d/metrics.jsonl" ] && echo -n "$(basename $d | cut -c1-4):$(wc -l < $d/metrics.jsonl)$([ -f $d/eval.json ] && echo +) "; done)"
  [ $((n % 3)) -eq 0 ] && snap
  if [ $(el) -ge $DEADLINE ]; then
    echo "deadline: stopping the sweep"; kill -INT $P 2>/dev/null; sleep 5; kill -9 $P 2>/dev/null; pkill -9 -f "vaelab.cli" 2>/dev/null
    break
  fi
done
wait $P 2>/dev/null
echo "t=$(el)s $(ls "$S"/runs/*/eval.json 2>/dev/null | wc -l) runs evaluated"; tail -3 "$OUTDIR/sweep.log"
# The report here, where the weights are: its figures (reconstructions, samples, latent maps)
# come back in the archive although the checkpoints do not.
timeout ${REPORT_S:-40} $PY -m vaelab.cli report --sweep "$S" --quiet > "$OUTDIR/report.log" 2>&1 || echo "report: rc $?"
snap; echo "t=$(el)s total"; ls -la "$OUTDIR"

#!/usr/bin/env bash
# Second GPU call (results/README.md): the Table 1 N_z = 20 runs that the first call
# (gpu_run.sh) did not finish, each as one `vaelab train` + `vaelab eval` at the study's
# protocol (seed-paper binarisation, the preset's 100 epochs, k = 5000 on all 10,000 test images).
# A run still training at the deadline is stopped and evaluated at its last finished epoch
# (eval.json says which).  Usage: bash results/gpu_rerun.sh OUTDIR [DEADLINE_S] [MODEL ...]
set -u
OUTDIR=${1:?usage}; DEADLINE=${2:-220}; shift 2
MODELS=${*:-vae vae-cnn iwae dvae hvae}
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; R=${RUNS:-/tmp/vaelab-runs}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR" "$R"; T0=$(date +%s)
{ date -u; nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null; $PY -c "import torch; print('torch', torch.__version__)"; } > "$OUTDIR/machine2.txt" 2>&1
pids=""
for m in $MODELS; do
  $PY -m vaelab.cli train --model $m --latent 20 --binarize seed-paper --set eval.k=5000 --device $DEVICE \
      --quiet --out "$R/$m-z20" ${EXTRA:-} > "$OUTDIR/train-$m.log" 2>&1 &
  pids="$pids $!"
done
while [ -n "$(jobs -rp)" ]; do
  sleep 10; el=$(( $(date +%s) - T0 ))
  echo "t=${el}s $(for m in $MODELS; do echo -n "$m:$(wc -l < $R/$m-z20/metrics.jsonl 2>/dev/null) "; done)"
  [ $el -ge $DEADLINE ] && { echo "deadline: stopping"; kill -INT $pids 2>/dev/null; sleep 5; kill -9 $pids 2>/dev/null; break; }
done
wait 2>/dev/null
for m in $MODELS; do
  $PY -m vaelab.cli eval "$R/$m-z20" --json --device $DEVICE > "$OUTDIR/eval-$m.json" 2> "$OUTDIR/eval-$m.log" &
done
wait
(cd "$R" && tar czf "$OUTDIR/runs2.tar.gz" --exclude='checkpoints' .)
echo "total $(( $(date +%s) - T0 ))s"; cat "$OUTDIR"/eval-*.json | cut -c1-200

#!/usr/bin/env bash
# Second GPU call of 2026-11-27 (results/README.md): the Table 1 cells the first call
# (gpu_table1.sh, eager) did not finish, with CUDA graphs (train.cuda_graph), N_z = 20 first:
#   vaelab sweep results/table1-rest.yaml --effort paper --set train.device=cuda
#       --set eval.batch_size=20 --set train.cuda_graph=true --workers 9
# tests/train/test_graphs.py runs beside it (CUDA: replayed step == eager step).  The sweep
# directory (store, configs, learning curves, evaluations; no weights) is archived into
# OUTDIR every 45 s and at the end, so a call cut short still returns what finished.
# Usage: bash results/gpu_table1_rest.sh OUTDIR [DEADLINE_S]   (VAELAB_DATA holds mnist.pkl.gz)
set -u
OUTDIR=${1:?usage: gpu_table1_rest.sh OUTDIR [DEADLINE_S]}
DEADLINE=${2:-235}
WORKERS=${WORKERS:-9}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR"; T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
{ date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
  $PY -c "import torch; print('torch', torch.__version__)"; git rev-parse HEAD 2>/dev/null; git status --short | head; } > "$OUTDIR/machine2.txt" 2>&1
cat "$OUTDIR/machine2.txt"
S=/tmp/vaelab-sweeps/table1-rest
snap() { (cd "$S" && tar czf "$OUTDIR/.table1-rest.tmp" --exclude='checkpoints' --exclude='*.safetensors' --exclude='events' . \
          && mv "$OUTDIR/.table1-rest.tmp" "$OUTDIR/table1-rest.tar.gz") 2>/dev/null; }
$PY -m vaelab.cli sweep results/table1-rest.yaml --effort paper --set train.device=cuda --set eval.batch_size=20 \
    --set train.cuda_graph=true --workers $WORKERS --quiet --out "$S" > "$OUTDIR/sweep2.log" 2>&1 &
P=$!
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/train/test_graphs.py > "$OUTDIR/graph-tests2.log" 2>&1 &
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
echo "t=$(el)s $(ls "$S"/runs/*/eval.json 2>/dev/null | wc -l) runs evaluated"; tail -3 "$OUTDIR/graph-tests2.log"
timeout 30 $PY -m vaelab.cli report --sweep "$S" --quiet > "$OUTDIR/report2.log" 2>&1 || echo "report failed"
snap; echo "t=$(el)s total"; ls -la "$OUTDIR"

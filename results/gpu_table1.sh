#!/usr/bin/env bash
# The study's Table 1 at its protocol on one lent GPU machine, in one call of the device tool.
#   1. checks: tests/train/test_graphs.py on CUDA (a replayed CUDA-graph step equals the eager
#      step, every model family); the graph is used only if they pass;
#   2. a small benchmark: one vae-tuned N_z=20 run alone, 3 epochs, eager and graphed;
#   3. `vaelab sweep table1 --effort paper --set train.device=cuda [--set train.cuda_graph=true]`
#      (every column, N_z = 20 first), stopped at DEADLINE seconds after the start; finished
#      runs are evaluated by the sweep itself (k = 5000 on all 10,000 test images);
#   4. `vaelab report` of the sweep; the store, every run's config / learning curve /
#      evaluation and the report come back as one archive (no weights).
# Usage: bash results/gpu_table1.sh OUTDIR [DEADLINE_S]   (VAELAB_DATA must hold mnist.pkl.gz)
set -u
OUTDIR=${1:?usage: gpu_table1.sh OUTDIR [DEADLINE_S]}
DEADLINE=${2:-500}
WORKERS=${WORKERS:-14}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR"
T0=$(date +%s)
el() { echo $(( $(date +%s) - T0 )); }
{
  date -u; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  $PY -c "import torch,sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
  git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head -20
} > "$OUTDIR/machine.txt" 2>&1
cat "$OUTDIR/machine.txt"

# 1. the CUDA-graph checks
EXTRA=""
if timeout 120 $PY -m pytest -q -p no:cacheprovider tests/train/test_graphs.py > "$OUTDIR/graph-tests.log" 2>&1; then
  EXTRA="--set train.cuda_graph=true"; echo "t=$(el)s graph tests passed: training with CUDA graphs"
else
  echo "t=$(el)s graph tests FAILED: training eagerly"; tail -30 "$OUTDIR/graph-tests.log"
fi

# 2. one run alone, eager then graphed (seconds per epoch in metrics.jsonl)
B=/tmp/vaelab-bench; rm -rf "$B"; mkdir -p "$B"
for mode in false true; do
  timeout 60 $PY -m vaelab.cli train --model vae-tuned --latent 20 --binarize seed-paper --epochs 3 --device cuda \
      --set train.cuda_graph=$mode --quiet --out "$B/graph-$mode" > "$B/graph-$mode.log" 2>&1
  echo "t=$(el)s bench cuda_graph=$mode: $($PY -c "import json,sys; r=[json.loads(l) for l in open('$B/graph-$mode/metrics.jsonl')]; print(' '.join(f\"{x['seconds']:.3f}s\" for x in r), 'valid', round(r[-1]['valid_elbo'],2))" 2>&1 | tail -1)"
done
(cd "$B" && tar czf "$OUTDIR/bench.tar.gz" --exclude='checkpoints' .)

# 3. the sweep, stopped at the deadline
S=/tmp/vaelab-sweeps/table1-paper
$PY -m vaelab.cli sweep table1 --effort paper --set train.device=cuda --set eval.batch_size=20 $EXTRA \
    --workers $WORKERS --quiet --out "$S" > "$OUTDIR/sweep.log" 2>&1 &
P=$!
while kill -0 $P 2>/dev/null; do
  sleep 15
  echo "t=$(el)s $(for d in "$S"/runs/*; do [ -f "$d/metrics.jsonl" ] && echo -n "$(basename $d | cut -c1-4):$(wc -l < $d/metrics.jsonl)$([ -f $d/eval.json ] && echo +) "; done)"
  if [ $(el) -ge $DEADLINE ]; then
    echo "deadline: stopping the sweep (unfinished runs keep their learning curves)"
    kill -INT $P 2>/dev/null; sleep 8; kill -9 $P 2>/dev/null; pkill -9 -f "vaelab.cli" 2>/dev/null
    break
  fi
done
wait 2>/dev/null
echo "t=$(el)s sweep stopped or done; $(ls "$S"/runs/*/eval.json 2>/dev/null | wc -l) runs evaluated"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null

# 4. the report and the archive
timeout 60 $PY -m vaelab.cli report --sweep "$S" --quiet > "$OUTDIR/report.log" 2>&1 || echo "report failed (see report.log)"
(cd "$S" && tar czf "$OUTDIR/table1-paper.tar.gz" --exclude='checkpoints' --exclude='*.safetensors' --exclude='events' .)
echo "t=$(el)s total"; ls -la "$OUTDIR"

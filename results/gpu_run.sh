#!/usr/bin/env bash
# The published-results run on a lent GPU machine (one call of the device tool, ~9 minutes).
# Runs two vaelab sweeps side by side on one GPU, then renders their reports:
#   1. the study's Table 1 at its protocol, N_z = 20 column (9 models, 100 epochs, k = 5000 on
#      all 10,000 test images);
#   2. Burda et al.'s protocol (standard experiment, paper effort: batch 20, their learning-rate
#      schedule), cut at STD_EPOCHS epochs (their schedule runs 3280).
# Usage: bash results/gpu_run.sh OUTDIR [DEADLINE_S]   (VAELAB_DATA must hold the data files)
set -u
OUTDIR=${1:?usage: gpu_run.sh OUTDIR [DEADLINE_S]}
DEADLINE=${2:-440}          # seconds of training before unfinished sweeps are stopped
STD_EPOCHS=${STD_EPOCHS:-13}  # the end of Burda et al.'s third stage (1 + 3 + 9 epochs)
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 VAELAB_OFFLINE=1
mkdir -p "$OUTDIR"
T0=$(date +%s)
{
  date -u; uname -a; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import torch,sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
  git rev-parse HEAD 2>/dev/null; git status --short 2>/dev/null | head
} > "$OUTDIR/machine.txt" 2>&1
cat "$OUTDIR/machine.txt"

S=${SWEEPS:-/tmp/vaelab-sweeps}
mkdir -p "$S"
$PY -m vaelab.cli sweep table1 --effort paper --set model.latent=20 --set train.device=$DEVICE \
    ${EXTRA:-} --workers 9 --quiet --out "$S/table1-z20" > "$OUTDIR/table1.log" 2>&1 &
P1=$!
$PY -m vaelab.cli sweep standard --effort paper --set train.epochs=$STD_EPOCHS --set train.device=$DEVICE \
    ${EXTRA:-} --workers 4 --quiet --out "$S/standard" > "$OUTDIR/standard.log" 2>&1 &
P2=$!
while kill -0 $P1 2>/dev/null || kill -0 $P2 2>/dev/null; do
  sleep 10
  el=$(( $(date +%s) - T0 ))
  echo "t=${el}s $(for d in "$S"/*/runs/*; do [ -f "$d/metrics.jsonl" ] && echo -n "$(basename $(dirname $(dirname $d)))/$(basename $d | cut -c1-6):$(wc -l < $d/metrics.jsonl) "; done)"
  if [ $el -ge $DEADLINE ]; then
    echo "deadline: stopping unfinished sweeps (their runs keep their checkpoints and learning curves)"
    kill -INT $P1 $P2 2>/dev/null; sleep 15; kill -9 $P1 $P2 2>/dev/null; pkill -9 -f vaelab.cli 2>/dev/null
    break
  fi
done
wait 2>/dev/null
echo "training phase took $(( $(date +%s) - T0 ))s"
for sw in "$S"/*; do
  name=$(basename "$sw")
  $PY -m vaelab.cli report --sweep "$sw" --quiet > "$OUTDIR/report-$name.log" 2>&1 || echo "report $name failed"
  # results only: the store, each run's config / learning curve / evaluation, the rendered report
  (cd "$sw" && tar czf "$OUTDIR/$name.tar.gz" --exclude='checkpoints' --exclude='*.safetensors' .)
done
echo "total $(( $(date +%s) - T0 ))s"
ls -la "$OUTDIR"

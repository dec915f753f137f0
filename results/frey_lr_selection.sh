#!/bin/bash
# The study's learning-rate stage for Frey Faces (its sec. 4.1): short runs of 50 epochs with
# Adagrad at lr 0.1, 0.01 and 0.02 for each latent size; the best validation ELBO wins.
# Validation is the 177 faces held out from the 1769 training faces (never the test faces).
# Usage: VAELAB_DATA=DIR OUT=DIR bash results/frey_lr_selection.sh    (about 12 x 15 s on one core)
export OMP_NUM_THREADS=1
V=${VAELAB:-vaelab}; OUT=${OUT:-/tmp/frey-lr}
for z in 2 5 10 20; do for lr in 0.1 0.01 0.02; do
  o=$OUT/z$z-lr$lr; [ -f $o/metrics.jsonl ] || $V train --model vae --dataset frey --hidden 200 --latent $z \
      --epochs 50 --lr $lr --threads 1 --quiet --out $o > /dev/null 2>&1
  echo "z=$z lr=$lr valid_elbo=$(tail -1 $o/metrics.jsonl | python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read())["valid_elbo"],2))')"
done; done

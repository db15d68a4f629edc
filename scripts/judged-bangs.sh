#!/usr/bin/env bash
# The judged term tried on Bangs (session 33, lab notes; not shipped): version 3's own Bangs-on edits of 4,800
# training faces (20 steps, stored settings), labelled where the judges r3 and spatial agree (0.81 of them; 0.145 read
# without a fringe by both, which version 3 reads with one on 0.96), then version 3 fine-tuned 2 + 2 epochs with the
# judged term (configs/avatars32-judged-bangs.yaml) and without it (configs/avatars32-finetune-short.yaml, the
# control), each calibrated keeping version 3's stored choices and measured on 150 validation faces. About 45 min on
# the 2-core CPU (the edits and the two fine-tunes run two at a time, one thread each); logs in $DIR.
set -euo pipefail
DIR=runs/judged-bangs
V3=src/spnn/assets/avatars32-spnn.safetensors
export OMP_NUM_THREADS=1
mkdir -p $DIR
for block in "0 1600" "1600 3200"; do
  set -- $block
  for shard in 0 1; do
    python scripts/judged_edits.py $V3 $DIR/edits-$1-$shard.safetensors --skip $1 --n $2 --shard $shard --shards 2 \
      >$DIR/edits-$1-$shard.log 2>&1 &
  done
  wait
done
python scripts/judged_edits.py $V3 $DIR/judged-bangs-v3.safetensors --merge $DIR/edits-{0-0,0-1,1600-0,1600-1}.safetensors
for config in judged-bangs finetune-short; do
  spnn train --data avatars --config configs/avatars32-$config.yaml --init $V3 --out $DIR/$config --cpu \
    >$DIR/$config.log 2>&1 &
done
wait
for config in judged-bangs finetune-short; do
  spnn calibrate --spnn $DIR/$config/phase2.safetensors --split val --n 200 --rules-n 3000 --keep-from $V3 \
    --out $DIR/$config-calibrated.safetensors --cpu >$DIR/calibrate-$config.log 2>&1
  for judge in r3 spatial; do
    python benchmarks/quality.py --split val --methods --n 150 --n-edit 150 --steps 20 --edits Bangs --no-multi \
      --spnn $DIR/$config-calibrated.safetensors --evaluator $judge --name judged-bangs-$config-$judge
  done
done

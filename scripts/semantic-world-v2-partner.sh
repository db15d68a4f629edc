#!/usr/bin/env bash
# The partner recipe (configs/avatars32-v2-partner.yaml) on avatar dataset version 2 (#19): the SPNN from
# scratch (20 + 5 epochs, about 25 min on the idle 2-core CPU), the version-2 evaluator and prior as in
# scripts/semantic-world-v2.sh, then the identity benchmark. Every command resumes (rerun after an
# interruption); logs in runs/v2/*.log.
set -euo pipefail
mkdir -p runs/v2
spnn data avatars --version 2 --n 30000 >runs/v2/data.log 2>&1
spnn train --data avatars:v2 --config configs/avatars32-v2-partner.yaml --hidden 32 --t-bound 3 --scale-bound 1 \
  --out runs/v2/spnn-partner >runs/v2/spnn-partner.log 2>&1
spnn evaluator train --data avatars:v2 --out runs/v2/evaluator --epochs 8 >runs/v2/evaluator.log 2>&1
spnn prior train --data avatars:v2 --init src/spnn/assets/avatars32-prior --out runs/v2/prior --epochs 3 \
  --batch-size 64 --lr 2e-4 >runs/v2/prior.log 2>&1
python benchmarks/quality.py --spnn runs/v2/spnn-partner/phase2.safetensors --prior runs/v2/prior/prior \
  --evaluator runs/v2/evaluator/evaluator.safetensors --data-version 2 --methods nlbp-learned nlbp-natural \
  --identity --n 200 --n-edit 20 --steps 20 --edits Eyeglasses Smiling --multi Eyeglasses Smiling \
  --name world-v2-partner-identity >runs/v2/quality-partner.log 2>&1

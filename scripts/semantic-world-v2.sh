#!/usr/bin/env bash
# Train the whole offline world on avatar dataset version 2 (more nuisance than 22 numbers hold: issue #19).
# Every command resumes where it stopped (rerun the script after an interruption); logs go to runs/v2/*.log.
# On 2 CPU cores the prior is the long part (about 2 h 10 min for version 1's schedule); on a GPU add nothing:
# the commands pick CUDA when present. Afterwards: benchmarks/quality.py --spnn runs/v2/spnn/phase2.safetensors
#   --prior runs/v2/prior-export --evaluator runs/v2/evaluator/evaluator.safetensors --data-version 2 --identity
set -euo pipefail
mkdir -p runs/v2
spnn data avatars --version 2 --n 30000 >runs/v2/data.log 2>&1
spnn evaluator train --data avatars:v2 --out runs/v2/evaluator --epochs 8 >runs/v2/evaluator.log 2>&1
spnn train --data avatars:v2 --out runs/v2/spnn --phase both --config configs/avatars32-robust.yaml \
  --hidden 32 --t-bound 3 --scale-bound 1 >runs/v2/spnn.log 2>&1
for epochs in 12 20 28 36; do  # the shipped prior's schedule, extended in turn (each resumes the last)
  spnn prior train --data avatars:v2 --out runs/v2/prior --epochs "$epochs" --batch-size 64 --lr 5e-4 \
    >>runs/v2/prior.log 2>&1
done
spnn prior export runs/v2/prior/checkpoints/last.safetensors --out runs/v2/prior-export >>runs/v2/prior.log 2>&1

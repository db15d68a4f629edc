#!/usr/bin/env bash
# The GPU checks and speed figures of the docs' "On a GPU" section, as one run on a CUDA machine:
# the CUDA-graph, sampler, back-projection and task-command tests on the GPU, then benchmarks/speed.py (32x32 shipped models,
# float32 / bfloat16 UNet, plain launches / CUDA graphs, 100-step throughput at batch 256) and
# benchmarks/paper_step.py (the paper's 256x256 shapes, whole sampling runs).
#
#   bash scripts/gpu-speed.sh OUTDIR      # results JSON and logs land in OUTDIR
#
# Without the package installed: scripts/gpu-setup.sh unpacks the wheels in .whl/ to /tmp/site and puts src/ on
# PYTHONPATH. Each stage has its own time limit; a failed stage does not
# stop the next.
set -u
OUT=${1:-${OUT:-/tmp/gpu-speed}}
source scripts/gpu-setup.sh

echo "== tests on CUDA"
timeout "${TEST_LIMIT:-120}" python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py tests/test_diffusion.py \
  tests/test_backproject.py tests/test_cli_tasks.py > "$OUT/tests.log" 2>&1
echo "tests rc $?"; tail -n 25 "$OUT/tests.log"

cd benchmarks
echo "== speed, 32x32"
timeout "${SPEED_LIMIT:-200}" python3 speed.py --steps 20 --repeats 3 --batches 1 16 --precisions float32 bfloat16 \
  --graphs off on --throughput 256 --no-memory --name speed-gpu > "$OUT/speed.log" 2>&1
echo "speed rc $?"; tail -n 45 "$OUT/speed.log"

echo "== paper shapes, 256x256"
timeout "${PAPER_LIMIT:-120}" python3 paper_step.py --repeats 2 --sampling 10 --name paper_step-gpu \
  > "$OUT/paper.log" 2>&1
echo "paper rc $?"; tail -n 30 "$OUT/paper.log"

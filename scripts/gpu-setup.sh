# Sourced by the scripts/gpu-*.sh runs, from the repository root, after OUT is set: makes OUT, installs the wheels
# carried in .whl/ (diffusers, python-avatars, resvg-py, importlib-metadata) to /tmp/site without the network, uses
# a carried data-cache/ for the rendered dataset, puts src/ on PYTHONPATH, sends benchmark results to OUT, and writes
# the machine's GPU and torch to OUT/env.txt.
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
[ -d data-cache ] && export SPNN_CACHE=$PWD/data-cache
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 SPNN_BENCH_RESULTS=$OUT
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

#!/usr/bin/env bash
# A larger prior for the 32x32 avatars, trained and judged in one short run on a CUDA machine (issue #19: the shipped
# 1.1 M-parameter prior draws grey hair at a third of the data's rate, lab notes session 22). Trains the `small` UNet
# preset (6.5 M parameters) in bfloat16 for at most TRAIN_LIMIT seconds (300), exports its EMA weights, and measures its
# fidelity (attribute rates and contrast of 500 unconditional samples against 500 real validation faces) on the GPU.
#
#   bash scripts/gpu-prior.sh OUTDIR      # OUTDIR/prior-PRESET.tar.part-*, OUTDIR/*.json, OUTDIR/*.log
#
# Then, on any machine: mkdir -p runs/prior-small && cat OUTDIR/prior-small.tar.part-* | tar -x -C runs/prior-small
# (the prior folder lands in runs/prior-small/prior); copy OUTDIR/prior-*-small.json to benchmarks/results/ and add
# "small" to report.py's PRIOR_RUNS for the prior-fidelity and edits tables (the edits ran on the GPU: confirm a
# promising row on the CPU with the same quality.py command before shipping anything).
#
# Carry to the device: .whl/ (wheels of diffusers, python-avatars, resvg-py, importlib-metadata: `pip download
# --no-deps -d .whl ...`) and data-cache/ (the rendered dataset, `cp ~/.cache/spnn/avatars-v1-s0-32px-n30000.npz
# data-cache/`), so that nothing is rendered or installed from the network there. Settings by environment:
# PRESET (small), EPOCHS (24: 576 k images, what 300 s hold at about 2,000 images/s; the `base` preset ran at
# 2,800-3,500 on the H200, the shipped prior saw 864 k; a run cut by the limit exports its last EMA), BATCH (256), LR (5e-4),
# DEVICE (cuda; cpu for a dry run with PRESET=tiny EPOCHS=1 MAX_STEPS=2 N_FID=8 N_EDIT=2 EDITS=Eyeglasses),
# TRAIN_LIMIT / FID_LIMIT / EDIT_LIMIT (seconds per stage: 300 / 60 / 180, so the run fits a 15-minute device
# budget with the machine's start; not yet run on a GPU).
set -u
OUT=${1:-${OUT:-/tmp/gpu-prior}}
PRESET=${PRESET:-small} EPOCHS=${EPOCHS:-24} BATCH=${BATCH:-256} LR=${LR:-5e-4} DEVICE=${DEVICE:-cuda}
source scripts/gpu-setup.sh
RUN=/tmp/gpu-prior-$PRESET  # a rerun on a warm machine resumes it
CPU_FLAG=$([ "$DEVICE" = cpu ] && echo --cpu || true)
BF16_FLAG=$([ "$DEVICE" = cpu ] || echo --bf16)

echo "== train the $PRESET prior (at most ${TRAIN_LIMIT:-300} s; resumable, so a cut run still has its last checkpoint)"
timeout "${TRAIN_LIMIT:-300}" python3 -m spnn prior train --data avatars --preset "$PRESET" --out "$RUN" \
  --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --warmup 500 --ema-decay 0.9995 --seed 0 --quiet \
  --sample-every 100000 --ckpt-every 500 ${MAX_STEPS:+--max-steps "$MAX_STEPS"} $BF16_FLAG $CPU_FLAG \
  > "$OUT/train.log" 2>&1
echo "train rc $?"; tail -n 5 "$OUT/train.log"
if [ ! -d "$RUN/prior" ] || [ "$RUN/checkpoints/last.safetensors" -nt "$RUN/prior" ]; then  # cut short: its EMA
  python3 -m spnn prior export "$RUN/checkpoints/last.safetensors" --out "$RUN/prior" >> "$OUT/train.log" 2>&1
fi
python3 -c "import sys; from spnn.io import read_metadata; print('trained steps', read_metadata(sys.argv[1])['step'])" \
  "$RUN/checkpoints/last.safetensors" | tee -a "$OUT/env.txt"
# the device returns files of at most 16 MiB: the prior folder as a tar in 15 MiB parts
rm -f "$OUT"/prior-"$PRESET".tar.part-*
tar -C "$RUN" -cf - prior | split -b 15M - "$OUT/prior-$PRESET.tar.part-"

echo "== fidelity of the $PRESET prior on $DEVICE"
cd benchmarks
timeout "${FID_LIMIT:-60}" python3 quality.py --methods none --n "${N_FID:-500}" --n-edit 0 --steps 50 --split val \
  --prior "$RUN/prior" --device "$DEVICE" --name "prior-fidelity-val-$PRESET" > "$OUT/fidelity.log" 2>&1
echo "fidelity rc $?"; tail -n 30 "$OUT/fidelity.log"

echo "== edits with the $PRESET prior on $DEVICE (the validation faces and seeds of prior-val-shipped)"
timeout "${EDIT_LIMIT:-180}" python3 quality.py --split val --methods --n 50 --n-edit "${N_EDIT:-50}" --steps 20 \
  --prior "$RUN/prior" --device "$DEVICE" ${EDITS:+--edits $EDITS} --name "prior-val-$PRESET" > "$OUT/edits.log" 2>&1
echo "edits rc $?"; tail -n 20 "$OUT/edits.log"

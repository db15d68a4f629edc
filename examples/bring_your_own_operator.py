"""Bring your own operator: a non-linear degradation you can only run forward, an SPNN emulator fitted to it,
and NLBP inversion of a degraded image inside the diffusion sampler, through the emulator alone and with each
step corrected by the degradation's own residual (`FeedbackEmulator`).

    python examples/bring_your_own_operator.py            # shipped 32x32 avatar prior, ~2 min on 2 CPU cores
    python examples/bring_your_own_operator.py --tiny     # seconds: tiny data and steps (the smoke test)
"""

import argparse
import tempfile

import torch
import torch.nn.functional as F
from torch import nn

from spnn.data.avatars import AvatarFaces
from spnn.degradations import train_emulator
from spnn.diffusion.sampler import sample
from spnn.evaluation.metrics import psnr
from spnn.models import load_prior
from spnn.operators import FeedbackEmulator, SPNNOperator
from spnn.tasks import make_guidance


class SaturatingSensor(nn.Module):
    """The degradation: 2x2 pooling, then a saturating response tanh(2 v) (a black box: forward only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(2.0 * F.avg_pool2d(x, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny settings (seconds)")
    args = ap.parse_args()
    n_train, steps, max_train_steps = (200, 5, 20) if args.tiny else (3000, 50, 600)

    train = AvatarFaces.head("train", n_train, root=None)   # rendered on the fly, no cache written
    val = AvatarFaces.head("val", 64, root=None)
    sensor = SaturatingSensor()
    with tempfile.TemporaryDirectory() as out:
        # 1. an SPNN g ~ sensor, by regression; it has an exact pseudo-inverse, the sensor has none
        emulator, metrics = train_emulator(sensor, train, val, out, output_shape=(3, 16, 16), hidden=16,
                                           epochs=50, max_steps=max_train_steps, progress=False)
    print(f"emulator fitted: validation MSE(g(x), D(x)) {metrics['val_loss']:.4g}")

    # 2. invert a degraded test face: y = sensor(x), sample x' with g(x') = y (NLBP inside the sampler), then
    # 3. the same with each step corrected by the sensor's own residual y - sensor(x'), one forward call a step
    x = AvatarFaces.head("test", 4, root=None).tensors()[0]
    with torch.no_grad():
        y = sensor(x)
    op = SPNNOperator(emulator.eval(), mode="natural")
    prior = load_prior()
    with torch.no_grad():
        blind = float((sensor(sample(prior, len(x), steps=steps, progress=False).images) - y).abs().mean())
    print(f"unguided samples: mean |sensor(x') - y| {blind:.3f}")
    for name, operator in [("emulator alone", op), ("emulator + sensor feedback", FeedbackEmulator(op, sensor))]:
        guidance = make_guidance("nlbp", operator, y, lam=1.0)  # the measurement of the real sensor
        restored = sample(prior, len(x), steps=steps, guidance=guidance, progress=False).images
        with torch.no_grad():
            fit = float((sensor(restored) - y).abs().mean())
        print(f"{name}: {len(x)} images, PSNR {float(psnr(restored.clamp(-1, 1), x).mean()):.2f} dB, "
              f"mean |sensor(x') - y| {fit:.3f}")

if __name__ == "__main__":
    main()

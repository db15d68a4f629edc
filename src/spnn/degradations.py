"""Non-linear image degradations.

Exact operators y = A(phi(x)): phi a pixel-wise invertible response curve, A a linear loss (average
pooling, inpainting mask, grayscale). By coordinate consistency their natural pseudo-inverse is
phi^-1(A+ y), and NLBP x' = phi^-1(phi(x) + lam A+(y - A phi(x))) satisfies A(phi(x')) = y exactly
(`spnn.operators.Composed`).

Black-box degradations (blur, downsampling, a saturating tone curve, clipping) are emulated by an
SPNN trained by regression (`train_emulator`), then inverted zero-shot with the same sampler.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spnn.errors import ConfigError
from spnn.operators import AveragePool, Colorization, Composed, Inpainting, LinearOperator, Operator

__all__ = ["ToneCurve", "AsinhCurve", "exact_operator", "BlackBoxCamera", "train_emulator", "EXACT_TASKS"]


class ToneCurve(nn.Module):
    """S-shaped response phi(x) = x + a tanh(b x) (a > 0: contrast; strictly increasing, a bijection of R).

    The inverse runs Newton's method to float precision (phi' >= 1).

    >>> phi = ToneCurve(0.6, 2.0)
    >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    >>> bool(torch.allclose(phi.inverse(phi(x)), x, atol=1e-12))
    True
    """

    def __init__(self, a: float = 0.6, b: float = 2.0):
        super().__init__()
        if a < 0:
            raise ConfigError("ToneCurve needs a >= 0 to stay invertible")
        self.a, self.b = float(a), float(b)

    def forward(self, x):
        return x + self.a * torch.tanh(self.b * x)

    def inverse(self, v, iterations: int = 50):
        x = v / (1 + self.a * self.b)
        for _ in range(iterations):
            th = torch.tanh(self.b * x)
            step = (x + self.a * th - v) / (1 + self.a * self.b * (1 - th * th))
            x = x - step
            if float(step.abs().max()) < 1e-14 * max(1.0, float(v.abs().max())):
                break
        return x


class AsinhCurve(nn.Module):
    """Log-like compressive response phi(x) = asinh(k x) / asinh(k); inverse sinh(asinh(k) v) / k."""

    def __init__(self, k: float = 4.0):
        super().__init__()
        self.k = float(k)
        self.scale = float(torch.asinh(torch.tensor(self.k)))

    def forward(self, x):
        return torch.asinh(self.k * x) / self.scale

    def inverse(self, v):
        return torch.sinh(self.scale * v) / self.k


EXACT_TASKS = ("tone-sr4", "tone-inpaint", "tone-gray", "log-sr4")


def exact_operator(task: str, shape) -> Composed:
    """Named exact non-linear operators: tone curve or log response followed by a linear loss."""
    curve, _, loss = task.partition("-")
    phi = {"tone": ToneCurve(), "log": AsinhCurve()}.get(curve)
    linear: LinearOperator | None = {
        "sr4": lambda: AveragePool(shape, 4),
        "inpaint": lambda: Inpainting.box(shape, shape[1] // 4, shape[2] // 4, shape[1] // 2, shape[2] // 2),
        "gray": lambda: Colorization(shape),
    }.get(loss, lambda: None)()
    if phi is None or linear is None:
        raise ConfigError(f"unknown degradation {task!r}; choose one of {EXACT_TASKS}")
    return Composed(linear, phi)


class BlackBoxCamera(Operator):
    """A differentiable stand-in for a camera: 3x3 blur, 4x average-pool, saturating tone curve, clipping.

    y = clip(1.3 tanh(1.5 pool4(blur(x))), -1, 1): (3, H, W) -> (3, H / 4, W / 4). Not invertible on its own
    terms (clipping), known to the solver only as a black box (or, for DPS, as a differentiable function).
    """

    def __init__(self, factor: int = 4, shape=(3, 32, 32)):
        super().__init__()
        self.input_shape = tuple(shape)
        self.output_shape = (shape[0], shape[1] // factor, shape[2] // factor)
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16
        self.register_buffer("kernel", kernel.expand(3, 1, 3, 3).clone())
        self.factor = factor

    def A(self, x):  # noqa: N802 - operator notation
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x), groups=3)
        x = F.avg_pool2d(x, self.factor)
        return (1.3 * torch.tanh(1.5 * x)).clamp(-1, 1)

    def pinv(self, y):
        raise NotImplementedError("the black-box camera has no pseudo-inverse; use an SPNN emulator")


def train_emulator(degradation: nn.Module, train_set, val_set, out_dir: str | Path, *, output_shape=(3, 8, 8),
                   hidden: int = 32, epochs: float = 5, batch_size: int = 128, lr: float = 1e-3,
                   recon_weight: float = 1.0, progress: bool = True, max_steps: int | None = None,
                   device: str | torch.device = "cpu"):
    """Fit an SPNN g ~ degradation by regression: MSE(g(x), D(x)) + recon_weight MSE(g+(g(x)), x)."""
    from spnn.io import load_tensors
    from spnn.network import SPNN, load_state_checked
    from spnn.training.loop import LoopConfig, TrainLoop

    out_dir = Path(out_dir)
    torch.manual_seed(0)
    net = SPNN.build(train_set.image_shape, output_shape, hidden=hidden, t_bound=3.0).to(device)

    def loss_fn(batch):
        x = batch[0]
        with torch.no_grad():
            target = degradation(x)
        y = net(x)
        task = F.mse_loss(y, target)
        recon = F.mse_loss(net.pinv(y), x)
        return task + recon_weight * recon, {"task": task.detach(), "recon": recon.detach()}

    vx = val_set.tensors(limit=512)[0].to(device)

    def evaluate():
        with torch.no_grad():
            return {"val_loss": float(F.mse_loss(net(vx), degradation(vx)))}

    def load(path):
        tensors, _ = load_tensors(path, device)
        load_state_checked(net, tensors, str(path))

    cfg = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup=100, log_every=50, ckpt_every=200,
                     max_steps=max_steps)
    loop = TrainLoop(cfg, list(net.parameters()), loss_fn, train_set, out_dir, lambda p, m: net.save(p, m),
                     load, evaluate, device, name="emulator")
    loop.run(progress=progress)
    if loop.step >= loop.total_steps:
        net.save(out_dir / "emulator.safetensors")
    return net, {"steps": loop.step, **evaluate()}

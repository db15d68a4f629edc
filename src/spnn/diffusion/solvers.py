"""Zero-shot solvers beside the guided sampler: DAPS and RED-diff, over the same `Prior` and any differentiable
operator (``A(x)``), written from the papers' algorithms.

**DAPS** (Zhang et al., "Improving diffusion inverse problem solving with decoupled noise annealing", CVPR 2025).
In the variance-exploding view of the prior (x / sqrt(a_t), noise level sigma_t = sqrt((1 - a_t) / a_t)), for
annealing levels sigma_1 > ... > sigma_N: (1) solve the probability-flow ODE from x at sigma_i down to a small
sigma with a few Euler steps, giving x0_hat; (2) run Langevin dynamics on p(x0 | x, y) ~ N(x0; x0_hat, r_i^2 I)
exp(-|y - A(x0)|^2 / (2 tau^2)), with r_i = sigma_i (DAPS's choice; ``r_std`` replaces it, e.g. by the exact
std of p(x0 | x_t) where that is known), x0 <- x0 + lr_i score + sqrt(2 lr_i) z; (3) re-noise,
x = x0 + sigma_{i+1} z. Step sizes decay linearly from ``lr`` to ``lr * lr_min_ratio``. Defaults are DAPS-1K's
(200 levels from sigma 100 to 0.1 on a poly-7 schedule, 5 ODE steps, 100 Langevin steps, lr 1e-4, tau 0.01):
about 1,000 network calls and 20,000 operator gradients per image.

**RED-diff** (Mardani et al., "A variational perspective on solving inverse problems with diffusion models",
ICLR 2024). Adam on the image mu, minimising |y - A(mu)|^2 / 2 (mean over measurements, times ``obs_weight``)
+ lam w_t mean(sg(eps(x_t, t) - e) mu), with x_t = sqrt(a_t) mu + sqrt(1 - a_t) e at timesteps descending from
T to 0 and w_t = sqrt((1 - a_t) / a_t): one network call and one operator gradient per step. It seeks a mode,
not a sample: its output has no posterior spread.

>>> import torch
>>> from spnn.diffusion.prior import Prior, build_unet
>>> from spnn.operators import Inpainting
>>> prior = Prior(build_unet(8, preset="tiny", block_out_channels=(8, 8, 8), norm_num_groups=4))
>>> op = Inpainting.box((3, 8, 8), 2, 2, 4, 4)
>>> y = op.A(torch.zeros(2, 3, 8, 8))
>>> daps(prior, op, y, levels=3, ode_steps=2, langevin_steps=2, progress=False).images.shape
torch.Size([2, 3, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from spnn.diffusion.prior import Prior, predict_eps, resolve_precision
from spnn.errors import ConfigError

__all__ = ["daps", "red_diff", "SolverResult", "edm_sigmas"]


@dataclass
class SolverResult:
    """``images``; ``network_calls`` and ``operator_gradients`` per image (the cost a solver paid)."""

    images: torch.Tensor
    network_calls: int
    operator_gradients: int


def edm_sigmas(sigma_max: float, sigma_min: float, n: int, rho: float = 7.0) -> list[float]:
    """n noise levels from sigma_max to sigma_min on Karras et al.'s poly-rho schedule.

    >>> " ".join(f"{s:.3f}" for s in edm_sigmas(10.0, 0.1, 3))
    '10.000 1.451 0.100'
    """
    if n == 1:
        return [sigma_max]
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / (n - 1) * (b - a)) ** rho for i in range(n)]


class _VE:
    """The prior seen as a variance-exploding denoiser D(x, sigma) on the discrete timesteps of its schedule."""

    def __init__(self, prior: Prior, precision: str):
        abar = prior.alphas_cumprod.double().cpu()
        self.prior, self.precision = prior, precision
        self.sigmas = ((1 - abar) / abar).sqrt()  # increasing with t

    def timestep(self, sigma: float) -> int:
        """The timestep whose noise level is nearest to sigma."""
        return int((self.sigmas - sigma).abs().argmin())

    def sigma(self, t: int) -> float:
        return float(self.sigmas[t])

    def denoise(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """x0 = x - sigma_t eps(sqrt(a_t) x, t) for x in the VE scale of timestep t."""
        s = self.sigma(t)
        a = 1.0 / (1.0 + s * s)
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        return x - s * predict_eps(self.prior, math.sqrt(a) * x, tt, self.precision)


def _generators(seeds, n: int) -> list[torch.Generator]:
    seeds = list(range(n)) if seeds is None else list(seeds)
    if len(seeds) != n:
        raise ConfigError(f"{len(seeds)} seeds for {n} samples")
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _noise(gens, shape, like: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(like)


def _residual_grad(op, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sample, the gradient of |y - A(x)|^2 (summed over the measurement)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        loss = (op.A(x) - y).pow(2).sum()
        return torch.autograd.grad(loss, x)[0]


def _check(prior: Prior, op, y: torch.Tensor) -> None:
    if not isinstance(y, torch.Tensor) or not y.is_floating_point() or len(y) == 0:
        raise ConfigError("y must be a non-empty floating tensor: one measurement per image")
    if not torch.isfinite(y).all():
        raise ConfigError("y contains NaN or inf values")
    shape = tuple(getattr(op, "input_shape", ()) or ())
    if shape and shape != tuple(prior.image_shape):
        raise ConfigError(f"the operator takes images of shape {shape} but the prior makes {tuple(prior.image_shape)}")


@torch.no_grad()
def daps(prior: Prior, op, y: torch.Tensor, *, levels: int = 200, sigma_max: float = 100.0, sigma_min: float = 0.1,
         ode_steps: int = 5, ode_sigma_min: float = 0.01, langevin_steps: int = 100, lr: float = 1e-4,
         lr_min_ratio: float = 0.01, tau: float = 0.01, r_std: Callable[[float], float] | None = None,
         seeds=None, precision: str = "float32", progress: bool = True) -> SolverResult:
    """Decoupled annealing posterior sampling (module docstring): samples x with A(x) ~ y, noise std ``tau``.

    ``r_std``: sigma -> the std r of the Gaussian that stands for p(x0 | x_t) in the Langevin target (default:
    r = sigma, DAPS's choice; wider than the true conditional, which inflates the spread of what y leaves open)."""
    from tqdm.auto import tqdm

    _check(prior, op, y)
    for name, v in (("levels", levels), ("ode_steps", ode_steps), ("langevin_steps", langevin_steps)):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if not (sigma_max > sigma_min > 0 and ode_sigma_min > 0 and lr > 0 and tau > 0 and 0 < lr_min_ratio <= 1):
        raise ConfigError("daps needs sigma_max > sigma_min > 0, ode_sigma_min > 0, lr > 0, tau > 0 and "
                          "lr_min_ratio in (0, 1]")
    p = next(prior.parameters())
    n, shape = len(y), prior.image_shape
    y = y.to(p.device, p.dtype)
    unet_precision = resolve_precision(precision, p.device, n, pixels=shape[1] * shape[2])
    ve = _VE(prior.for_inference().at_precision(unet_precision), unet_precision)
    gens = _generators(seeds, n)
    steps = [ve.timestep(s) for s in edm_sigmas(sigma_max, sigma_min, levels)]
    rs = [float(ve.sigma(t)) if r_std is None else float(r_std(ve.sigma(t))) for t in steps]
    if bad := [(float(ve.sigma(t)), r) for t, r in zip(steps, rs) if not 0 < r < math.inf]:
        raise ConfigError(f"r_std must give a positive finite std at every level; at sigma {bad[0][0]:g} it gave "
                          f"{bad[0][1]!r}")
    x = ve.sigma(steps[0]) * _noise(gens, shape, y)
    x0 = x
    calls = grads = 0
    for i, t in enumerate(tqdm(steps, desc="daps", disable=not progress, leave=False)):
        sigma = ve.sigma(t)
        # (1) x0_hat by the probability-flow ODE from sigma down to ode_sigma_min (Euler)
        ode = [ve.timestep(s) for s in edm_sigmas(sigma, ode_sigma_min, ode_steps + 1)]
        z = x
        for a, b in zip(ode[:-1], ode[1:]):
            d = (z - ve.denoise(z, a)) / ve.sigma(a)
            z = z + (ve.sigma(b) - ve.sigma(a)) * d
            calls += 1
        x0_hat = z
        # (2) Langevin on N(x0; x0_hat, r^2) exp(-|y - A(x0)|^2 / (2 tau^2))
        step = lr * (1 + i / max(levels - 1, 1) * (lr_min_ratio - 1))
        r = rs[i]
        x0 = x0_hat.clone()
        for _ in range(langevin_steps):
            score = -_residual_grad(op, x0, y) / (2 * tau**2) + (x0_hat - x0) / r**2
            x0 = x0 + step * score + math.sqrt(2 * step) * _noise(gens, shape, y)
            grads += 1
            if not torch.isfinite(x0).all() or float(x0.abs().max()) > 1e4:
                raise ConfigError(f"DAPS diverged at annealing level {i + 1} of {levels} (Langevin step {step:.2g} "
                                  f"with tau {tau:g}): lower lr or raise tau for this operator")
        # (3) re-noise to the next level
        if i + 1 < len(steps):
            x = x0 + ve.sigma(steps[i + 1]) * _noise(gens, shape, y)
    return SolverResult(x0, calls, grads)


def red_diff(prior: Prior, op, y: torch.Tensor, *, steps: int = 1000, lr: float = 0.1, lam: float = 0.25,
             obs_weight: float = 1.0, init: torch.Tensor | None = None, seeds=None, precision: str = "float32",
             progress: bool = True) -> SolverResult:
    """RED-diff (module docstring): Adam on the image against the measurement and the denoiser's regulariser.

    ``init``: the starting image (default: ``op.pinv(y)`` when the operator has one, else noise)."""
    from tqdm.auto import tqdm

    _check(prior, op, y)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    if not (lr > 0 and lam >= 0 and obs_weight >= 0):
        raise ConfigError("red_diff needs lr > 0, lam >= 0 and obs_weight >= 0")
    p = next(prior.parameters())
    n, shape = len(y), prior.image_shape
    y = y.to(p.device, p.dtype)
    unet_precision = resolve_precision(precision, p.device, n, pixels=shape[1] * shape[2])
    unet = prior.for_inference().at_precision(unet_precision)
    gens = _generators(seeds, n)
    abar = prior.alphas_cumprod.to(p.device, torch.float64)
    if init is None:
        try:
            with torch.no_grad():
                init = op.pinv(y)
        except NotImplementedError:
            init = _noise(gens, shape, y)
    mu = init.detach().clone().to(p.device, p.dtype).requires_grad_(True)
    opt = torch.optim.Adam([mu], lr=lr, betas=(0.9, 0.99))
    ts = torch.linspace(prior.num_train_timesteps - 1, 0, steps).round().long().tolist()
    for t in tqdm(ts, desc="red-diff", disable=not progress, leave=False):
        a = abar[t].to(p.dtype)
        e = _noise(gens, shape, y)
        with torch.no_grad():
            x_t = a.sqrt() * mu + (1 - a).sqrt() * e
            eps = predict_eps(unet, x_t, torch.full((n,), t, device=p.device), unet_precision)
        weight = lam * float(((1 - a) / a).sqrt())
        fit = (op.A(mu) - y).pow(2).flatten(1).mean(1).sum() / 2
        reg = ((eps - e).detach() * mu).flatten(1).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        (obs_weight * fit + weight * reg).backward()
        opt.step()
    return SolverResult(mu.detach(), steps, steps)

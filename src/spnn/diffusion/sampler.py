"""DDIM-style sampling over a `Prior`, guided by back-projection or gradients.

Per step (t -> t_next): eps = eps_theta(x_t, t); x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t) (clipped to
[-1, 1] by our preset); x0 <- guidance.project(x0, t); x_next = sqrt(a_next) x0 + c2 eps + sigma z with
c2 = sqrt(max(0, 1 - a_next - sigma^2)) and sigma = eta sqrt((1 - a_next) / (1 - a_t)) sqrt(1 - a_t / a_next)
(DDIM), or sigma = sqrt(1 - a_t / a_next) under the authors' preset (`spnn.diffusion.presets`, which also
lists what else ``preset="paper"`` changes). Gradient guidance subtracts
step * grad_{x_t} loss(x0(x_t)). The output is the (guided) x0 of the last step, so with a
back-projection of step 1 at t = 0, A(output) = y exactly.

Every sample draws its noise from its own generator (CPU, seeded per sample): sample i with seed s is
the same image alone or in any batch, on any device (in float32, bit for bit within a process; across
processes to float rounding, which on this project's CPU depends on memory layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spnn.checks import check_images, check_memory
from spnn.diffusion.guidance import Guidance
from spnn.diffusion.presets import SamplerPreset, get_preset
from spnn.diffusion.prior import Prior, predict_eps, resolve_precision
from spnn.diffusion.schedule import ddim_timesteps, time_travel
from spnn.errors import ConfigError
from spnn.graphs import check_graphs, resolve_graphs

__all__ = ["sample", "SampleResult", "ddim_invert", "noise_scale"]


@dataclass
class SampleResult:
    images: torch.Tensor
    timesteps: list[int]
    trajectory: list[torch.Tensor] | None = None


def noise_scale(a_t: torch.Tensor, a_next: torch.Tensor, eta: float | None) -> torch.Tensor:
    """sigma of a step t -> t_next: DDIM's eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a'), or the authors'
    sqrt(1 - a / a') when ``eta`` is None."""
    base = (1 - a_t / a_next).clamp_min(0).sqrt()
    return base if eta is None else eta * ((1 - a_next) / (1 - a_t)).sqrt() * base


@torch.no_grad()
def ddim_invert(prior: Prior, images: torch.Tensor, timesteps: list[int], precision: str = "float32"
                ) -> torch.Tensor:
    """Deterministic DDIM inversion: clean images -> x_t at ``timesteps[0]`` (the largest).

    Walks the grid upwards, x_{t'} = sqrt(a_t') x0 + sqrt(1 - a_t') eps(x_t, t); sampling back down the same
    grid with eta = 0 and no guidance returns close to the images (`sample` with ``invert=True``)."""
    abar = prior.alphas_cumprod.to(images.device, torch.float64)
    x = images
    a_cur = torch.ones((), device=x.device, dtype=x.dtype)
    for t in sorted(timesteps):
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        eps = predict_eps(prior, x, tt, precision)
        x0 = (x - (1 - a_cur).sqrt() * eps) / a_cur.sqrt()
        a_cur = abar[t].to(x.dtype)
        x = a_cur.sqrt() * x0 + (1 - a_cur).sqrt() * eps
    return x


def sample(prior: Prior, n: int, *, steps: int = 100, eta: float | None = None, guidance: Guidance | None = None,
           seeds: list[int] | None = None, travel: tuple | None = None, x_start: torch.Tensor | None = None,
           t_start: int | None = None, invert: bool = False, clip_x0: bool | None = None,
           clip_guided: bool | None = None, preset: str | SamplerPreset = "spnn", precision: str = "auto",
           return_trajectory: bool = False, progress: bool = True, dtype: torch.dtype | None = None,
           graphs: str | bool = "auto") -> SampleResult:
    """Draw ``n`` images.

    ``preset``: "spnn" (ours) or "paper" (the authors' loop; `spnn.diffusion.presets`); ``eta``, ``clip_x0``,
    ``clip_guided`` override the preset's noise and clipping (``eta=None``: the preset's). ``seeds``: one per
    sample (default: the preset's, 0..n-1 for ours, 1234 for every sample for theirs). ``travel``: (length,
    repeats[, t_min, t_max]) RePaint time travel. ``x_start`` with ``t_start``: start from these images noised
    to t_start (editing), or with ``invert=True`` from their DDIM inversion (`ddim_invert`, deterministic; use
    with a small eta). ``precision``: the UNet's, "auto" (bfloat16 where measured faster: `resolve_precision`),
    "float32" or "bfloat16"; the guidance (SPNN, operators) always runs in the images' dtype. ``graphs``: replay
    the UNet call and the back-projection from CUDA graphs (`spnn.graphs`; "auto": on CUDA devices, the same
    numbers as plain calls), recorded at the first run of each batch size; on a CPU a bfloat16 UNet is called as a
    frozen TorchScript trace (`Prior.eps`; the same numbers to bfloat16 rounding); "off": plain calls everywhere.
    """
    from tqdm.auto import tqdm

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n = {n!r}: ask for at least one sample (a positive integer)")
    pr = get_preset(preset)
    recorded = check_graphs(graphs) != "off"  # CUDA graphs on a GPU, frozen UNet traces on a CPU
    eta = pr.eta if eta is None else eta
    clip_x0 = pr.clip if clip_x0 is None else clip_x0
    clip_guided = pr.clip if clip_guided is None else clip_guided
    if eta is not None and not (isinstance(eta, (int, float)) and 0 <= eta <= 1):
        raise ConfigError(f"eta = {eta!r}: must be in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise)")
    num_train = prior.num_train_timesteps
    if t_start is not None and not (isinstance(t_start, int) and 0 < t_start < num_train):
        raise ConfigError(f"t_start = {t_start!r}: must be an integer in 1..{num_train - 1} (the noise level to "
                          "start from)")
    if x_start is not None:
        check_images(x_start, "x_start")
    # the UNet's activations: about 64 copies of the batch of images (float32)
    check_memory(n * torch.Size(prior.image_shape).numel() * 4 * 64, f"sampling {n} images of {prior.image_shape}",
                 "draw fewer images per call")
    if travel is not None and (not isinstance(travel, (tuple, list)) or not 2 <= len(travel) <= 4 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in travel)):
        raise ConfigError(f"travel = {travel!r}: give (length, repeats[, t_min[, t_max]]) as integers, e.g. (5, 2)")
    if (x_start is None) != (t_start is None):
        raise ConfigError("x_start and t_start go together: give both (editing) or neither (sampling from noise)")
    guidance = guidance or Guidance()
    guidance.begin(n)
    p = next(prior.parameters())
    device, dtype = p.device, dtype or p.dtype
    if seeds is None:
        seeds = [pr.shared_seed] * n if pr.shared_seed is not None else list(range(n))
    seeds = list(seeds)
    if len(seeds) != n:
        raise ConfigError(f"{len(seeds)} seeds for {n} samples")
    shape = prior.image_shape
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]

    pinned = torch.device(device).type == "cuda"  # a copy from page-locked memory does not stop the host

    def noise() -> torch.Tensor:
        draws = [torch.randn(shape, generator=g) for g in gens]
        if not pinned:
            return torch.stack(draws).to(device, dtype)
        return torch.stack(draws, out=torch.empty((n, *shape), pin_memory=True)).to(device, dtype, non_blocking=True)

    ts = ddim_timesteps(prior.num_train_timesteps, steps, t_start)
    if travel:
        ts = time_travel(ts, *travel)
    abar = prior.alphas_cumprod.to(device, torch.float64)

    def a(t: int) -> torch.Tensor:
        return abar[t].to(dtype) if t >= 0 else torch.ones((), device=device, dtype=dtype)

    prior.for_inference()
    traced = recorded and prior.will_trace("bfloat16")  # bfloat16 runs as a frozen trace (CPU)
    unet_precision = resolve_precision(precision, device, n, pr.name, dtype, pixels=shape[1] * shape[2],
                                       traced=traced)
    unet = prior.at_precision(unet_precision)  # the prior in the UNet's precision
    use_graphs = resolve_graphs(graphs, device)
    eps_of = unet.graphed_eps(unet_precision) if use_graphs else lambda x, t: predict_eps(unet, x, t, unet_precision)
    if x_start is not None and x_start.shape[1:] != shape:
        raise ConfigError(f"x_start has shape {tuple(x_start.shape[1:])}, the prior makes {shape}")
    if x_start is None and invert:
        raise ConfigError("invert=True needs x_start (the images to invert)")
    x = noise()
    trajectory = [] if return_trajectory else None
    traces_before, unet.use_traces = unet.use_traces, recorded
    guidance.use_graphs(use_graphs)
    try:
        if x_start is not None and invert:
            x = ddim_invert(unet, x_start.to(device, dtype), ts, unet_precision)
        elif x_start is not None:
            x = a(ts[0]).sqrt() * x_start.to(device, dtype) + (1 - a(ts[0])).sqrt() * x
        x0 = x
        for k, t in enumerate(tqdm(ts, desc="sampling", disable=not progress, leave=False)):
            t_next = ts[k + 1] if k + 1 < len(ts) else -1
            a_t, a_n = a(t), a(t_next)
            if t_next > t:  # time travel: re-noise x_t -> x_{t_next}
                with torch.no_grad():
                    x = (a_n / a_t).sqrt() * x + (1 - a_n / a_t).sqrt() * noise()
                continue
            tt = torch.full((n,), t, device=device, dtype=torch.long)
            if guidance.needs_grad:
                with torch.enable_grad():
                    x_in = x.detach().requires_grad_(True)
                    eps = predict_eps(unet, x_in, tt, unet_precision)
                    x0 = (x_in - (1 - a_t).sqrt() * eps) / a_t.sqrt()
                    if clip_x0:
                        x0 = x0.clamp(-1, 1)
                    grad = torch.autograd.grad(guidance.loss(x0, t).sum(), x_in)[0]
                eps, x0 = eps.detach(), x0.detach()
            else:
                with torch.no_grad():
                    eps = eps_of(x, tt)
                    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
                    if clip_x0:
                        x0 = x0.clamp(-1, 1)
                    x0 = guidance.project(x0, t)
                    if clip_guided and t_next >= 0:
                        # keep x_t in the prior's range; the last step's projection is returned unclipped
                        x0 = x0.clamp(-1, 1)
            if trajectory is not None:
                trajectory.append(x0.detach().cpu())
            with torch.no_grad():
                sigma = noise_scale(a_t, a_n, eta)
                z = noise()
                x = a_n.sqrt() * x0 + (1 - a_n - sigma**2).clamp_min(0).sqrt() * eps + sigma * z
                if guidance.needs_grad:
                    x = x - guidance.step_size(t) * grad
    finally:
        guidance.use_graphs(False)
        unet.use_traces = traces_before
    return SampleResult(images=x0.detach(), timesteps=ts, trajectory=trajectory)

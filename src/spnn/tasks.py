"""Zero-shot tasks on top of the sampler: reconstruction from semantics, attribute generation and
editing, linear restoration. Each returns images and the numbers that judge them.

Editing recipe (the paper does not publish one): noise the real image to ``t_start`` (default 400 of
1000), then sample with back-projection in *natural* mode on the chosen attribute coordinates only
(mask): natural NLBP keeps the completed null-space coordinates of x0, and starting from the noised
image keeps its layout and colours. lam = 0.5 above t = 200 ("gentle"), 1 below, so the final image
satisfies the edited coordinates exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from spnn.diffusion.guidance import DPS, BackProjection, ClassifierGuidance, Guidance, paper_lam
from spnn.diffusion.prior import Prior
from spnn.diffusion.sampler import sample
from spnn.operators import Operator, SPNNOperator, edit_target

__all__ = ["METHODS", "make_guidance", "reconstruct", "generate", "edit", "restore", "TaskResult",
           "gentle_lam"]

METHODS = ("nlbp", "dps", "cg", "none")


@dataclass
class TaskResult:
    images: torch.Tensor
    targets: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


def gentle_lam(t: int) -> float:
    """Editing step: 0.5 above t = 200, 1 below."""
    return 0.5 if t > 200 else 1.0


def make_guidance(method: str, op: Operator, y: torch.Tensor, *, mask=None, lam=paper_lam, skip_tol=None,
                  zeta: float = 0.5, cg_scale: float = 1.0) -> Guidance:
    """Guidance by name: nlbp (back-projection; DDNM for linear operators), dps, cg, none."""
    if method == "nlbp":
        return BackProjection(op, y, lam=lam, mask=mask, skip_tol=skip_tol)
    if method == "dps":
        return DPS(op, y, zeta=zeta, mask=mask)
    if method == "cg":
        return ClassifierGuidance(op, y, scale=cg_scale, mask=mask)
    if method == "none":
        return Guidance()
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def reconstruct(prior: Prior, op: SPNNOperator, images: torch.Tensor, *, method: str = "nlbp",
                steps: int = 100, seeds=None, skip_tol: float | None = 0.11, progress: bool = True,
                **guidance_options) -> TaskResult:
    """Reconstruction from semantics: y = g(image); sample images x with g(x) = y."""
    with torch.no_grad():
        y = op.A(images.to(next(prior.parameters())))
    guidance = make_guidance(method, op, y, skip_tol=skip_tol if method == "nlbp" else None, **guidance_options)
    out = sample(prior, len(y), steps=steps, guidance=guidance, seeds=seeds, progress=progress).images
    return TaskResult(out, y)


def generate(prior: Prior, op: SPNNOperator, attributes: dict[str, float], n: int, *, method: str = "nlbp",
             steps: int = 100, seeds=None, logit: float = 3.0, progress: bool = True,
             **guidance_options) -> TaskResult:
    """Multi-attribute generation: enforce the named attributes (value 1 -> +logit, 0 -> -logit), others free."""
    p = next(prior.parameters())
    y0 = torch.zeros(n, *op.output_shape, device=p.device, dtype=p.dtype)
    y, mask = edit_target(op, y0, attributes, logit=logit)
    guidance = make_guidance(method, op, y, mask=mask, **guidance_options)
    out = sample(prior, n, steps=steps, guidance=guidance, seeds=seeds, progress=progress).images
    return TaskResult(out, y, mask)


def edit(prior: Prior, op: SPNNOperator, images: torch.Tensor, attributes: dict[str, float], *,
         t_start: int = 400, steps: int = 100, seeds=None, logit: float = 3.0, method: str = "nlbp",
         progress: bool = True, **guidance_options) -> TaskResult:
    """Edit real images: set the named attributes, keep the rest (see the module docstring)."""
    p = next(prior.parameters())
    images = images.to(p)
    with torch.no_grad():
        y0 = op.A(images)
    y, mask = edit_target(op, y0, attributes, logit=logit)
    natural = SPNNOperator(op.net, mode="natural", origin=op.origin) if isinstance(op, SPNNOperator) else op
    guidance_options.setdefault("lam", gentle_lam)
    guidance = make_guidance(method, natural, y, mask=mask, **guidance_options)
    out = sample(prior, len(images), steps=steps, guidance=guidance, seeds=seeds, x_start=images,
                 t_start=t_start, progress=progress).images
    return TaskResult(out, y, mask, {"original_logits": y0})


def restore(prior: Prior, op: Operator, images: torch.Tensor, *, method: str = "nlbp", steps: int = 100,
            seeds=None, progress: bool = True, **guidance_options) -> TaskResult:
    """Restoration from y = A(image) (linear: DDNM; non-linear operators work the same way)."""
    p = next(prior.parameters())
    with torch.no_grad():
        y = op.A(images.to(p))
    guidance_options.setdefault("lam", 1.0)
    guidance = make_guidance(method, op, y, **guidance_options)
    out = sample(prior, len(images), steps=steps, guidance=guidance, seeds=seeds, progress=progress).images
    return TaskResult(out, y)

"""Guidance for the sampler: back-projection (NLBP / DDNM) and gradient baselines (DPS, classifier).

A guidance either *projects* the predicted clean image x0 at each step (``project``), or supplies a
per-sample *loss* of x0 whose gradient with respect to x_t is subtracted from x_{t-1} (``needs_grad``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from spnn.calibration import RANGE_RULES
from spnn.errors import ConfigError
from spnn.graphs import GraphedOperator
from spnn.operators import LinearOperator, Operator, SPNNOperator, as_operator

__all__ = ["Guidance", "BackProjection", "InRegion", "check_region", "DPS", "PaperDPS", "ClassifierGuidance",
           "paper_lam", "constant", "RANGE_RULES"]

Schedule = Callable[[int], float]


def paper_lam(t: int) -> float:
    """The paper's NLBP step: 0.5 while t >= 600, 1.0 below."""
    return 0.5 if t >= 600 else 1.0


def constant(value: float) -> Schedule:
    return lambda t: value


def _schedule(v) -> Schedule:
    return v if callable(v) else constant(float(v))


class Guidance:
    """Unconditional: x0 is left as predicted."""

    needs_grad = False

    def project(self, x0: torch.Tensor, t: int) -> torch.Tensor:
        return x0

    def loss(self, x0: torch.Tensor, t: int) -> torch.Tensor:  # pragma: no cover - gradient methods
        raise NotImplementedError

    def step_size(self, t: int) -> float:
        return 0.0

    def begin(self, n: int) -> None:
        """Called by the sampler before the first step of a trajectory of ``n`` samples."""

    def use_graphs(self, on: bool) -> None:
        """Replay the operator's calls from CUDA graphs (`spnn.graphs`) while ``on``: the sampler's ``graphs``."""


class BackProjection(Guidance):
    """x0 <- back-projection of x0 onto A(x) = y with step lam(t): NLBP for an SPNN, DDNM for a linear op.

    ``mask`` selects enforced output coordinates (others keep A(x0)). ``bounds=(lower, upper)`` instead
    enforces a box, lower <= A(x) <= upper (the target is A(x0) clamped to the box, so coordinates
    already inside do not move; +-inf leaves a side free); ``y`` is then unused and may be None.
    ``skip_tol``: samples whose mean |sigmoid(A(x0)) - sigmoid(y)| over enforced coordinates is
    <= skip_tol are left unchanged (the paper's 0.11 for attribute logits), except at t = 0 when
    ``exact_at_end`` (default), so the output satisfies the constraint. ``max_abs``: a safeguard for
    targets the operator cannot reach inside the image range; a sample whose projection leaves
    [-max_abs, max_abs] retries with half the step (up to ``backtrack`` times), then keeps x0 (a float, or
    one value per sample).
    ``form``: "completion" (ours) or "paper" (the authors' recomputed arithmetic, `SPNNOperator.back_project`).
    ``slack`` d (a point target y only): before the last step aim at the nearest point of the box [y - d, y + d],
    at t = 0 at y itself, so g(x) = y still holds at the end while the steps before leave the logits some room.
    ``max_move``: a per-sample budget on the summed RMS pixel change of the projections over one trajectory;
    a sample past it is no longer projected (its bound then stays unmet and is reported): edits the network
    can realise move little (0.1-0.4 for Smiling, Eyeglasses, Pale_Skin with the shipped models), the
    unrealisable ones keep pushing (1.1-1.4 for Wearing_Hat, Blond_Hair) and turn images blue. Costs one
    completion and one inverse per step (plus one batch inverse per retry, only in steps where a sample
    needs it).
    """

    def __init__(self, op, y: torch.Tensor | None, lam: float | Schedule = paper_lam,
                 mask: torch.Tensor | None = None, skip_tol: float | None = None, mode: str = "learned",
                 exact_at_end: bool = True, bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                 max_abs: float | torch.Tensor | None = None, backtrack: int = 5, max_move: float | None = None,
                 form: str = "completion", slack: float | None = None, range_rule: str = "halve"):
        if (y is None) == (bounds is None):
            raise ConfigError("give either a target y or bounds=(lower, upper)")
        if skip_tol is not None and not (0 <= skip_tol <= 1):
            raise ConfigError(f"skip_tol = {skip_tol!r}: a mean sigmoid difference, in [0, 1]")
        if slack is not None and (y is None or not float(slack) >= 0):
            raise ConfigError(f"slack = {slack!r}: a non-negative logit distance around a point target y")
        if range_rule not in RANGE_RULES:
            raise ConfigError(f"range_rule = {range_rule!r}: choose one of {RANGE_RULES}")
        self.form, self.slack, self.range_rule = form, slack, range_rule
        self.skipped: torch.Tensor | None = None
        self.op: Operator = as_operator(op, mode)
        if form == "paper" and getattr(self.op, "latents_from", "logits") != "logits":
            raise ConfigError("the paper's update form takes the learned latents from the logits; use the spnn "
                              "preset (form 'completion') with latents_from='labels'")
        self.y, self.lam, self.skip_tol = y, _schedule(lam), skip_tol
        self.bounds = bounds
        self.exact_at_end, self.max_abs, self.backtrack = exact_at_end, max_abs, backtrack
        self.max_move, self.moved = max_move, None
        self.mask = None if mask is None else mask.to((y if y is not None else bounds[0]).device).bool()
        self._graphed: GraphedOperator | None = None  # kept between runs: its graphs are recorded once
        self._active: GraphedOperator | None = None
        self._graphed_key: tuple = ()

    def use_graphs(self, on: bool) -> None:
        """The SPNN and spnn's own linear operators only: other code (a black-box forward model, an operator of
        one's own) may read values back to the host or leave the GPU, which a graph cannot record."""
        own = isinstance(self.op, (SPNNOperator, LinearOperator)) and type(self.op).__module__ == "spnn.operators"
        if not on or not own:
            self._active = None
            return
        # recorded again when a weight moves or changes in place: the graphs hold values derived from them
        key = tuple((p.data_ptr(), p._version) for p in self.op.parameters())
        if self._graphed is None or self._graphed.op is not self.op or self._graphed_key != key:
            self._graphed, self._graphed_key = GraphedOperator(self.op), key
        self._active = self._graphed

    def target(self, ax: torch.Tensor, t: int = 0) -> torch.Tensor:
        """The point of the constraint set that the step aims at, given A(x0); with ``slack`` d, the box
        [y - d, y + d] before the last step (t > 0) and y itself at t = 0."""
        if self.bounds is not None:
            lower, upper = (b.to(ax) for b in self.bounds)
            return ax.clamp(lower, upper)
        y = self.y.to(ax) if self.mask is None else torch.where(self.mask, self.y.to(ax), ax)
        return ax.clamp(y - self.slack, y + self.slack) if self.slack is not None and t > 0 else y

    def begin(self, n: int) -> None:
        self.moved = None

    def project(self, x0, t):
        out = self._project(x0, t)
        if self.max_move is None:
            return out
        if self.moved is None or len(self.moved) != len(x0):
            self.moved = x0.new_zeros(len(x0))
        spent = (self.moved > self.max_move).view(-1, *[1] * (x0.dim() - 1))
        out = torch.where(spent, x0, out)
        self.moved = self.moved + (out - x0).flatten(1).pow(2).mean(1).sqrt()
        return out

    def _project(self, x0, t):
        lam = self.lam(t)
        op = self._active if self._active is not None else self.op
        completion = op.complete(x0) if hasattr(op, "complete") else None
        ax = completion[0] if completion is not None else op.A(x0)
        y = self.target(ax, t)
        lam_b: float | torch.Tensor = lam
        done = None
        if self.skip_tol is not None and not (self.exact_at_end and t == 0):
            diff = (torch.sigmoid(ax) - torch.sigmoid(y)).abs()
            if self.mask is not None:
                diff = diff[:, self.mask]
            done = diff.flatten(1).mean(1) <= self.skip_tol
            lam_b = torch.where(done, 0.0, lam).to(ax)

        def step(lam_b):
            if completion is not None:
                return op.back_project(x0, y, lam_b, completion=completion, form=self.form)
            return op.back_project(x0, y, lam_b)

        self.skipped = done  # per-sample skip flags of the last step (None: the rule is off)
        out = step(lam_b)
        if done is not None:  # skipped samples are returned as they came, not round-tripped through G
            out = torch.where(done.view(-1, *[1] * (x0.dim() - 1)), x0, out)
        if self.max_abs is None:
            return out
        limit = torch.as_tensor(self.max_abs, dtype=ax.dtype, device=ax.device)
        if self.range_rule == "clip":
            limit = limit.view(-1, *[1] * (x0.dim() - 1)) if limit.dim() else limit
            return out.clamp(-limit, limit)
        lam_b = torch.as_tensor(lam_b, dtype=ax.dtype, device=ax.device).expand(len(x0)).clone()
        for retry in range(self.backtrack + 1):
            bad = (out.flatten(1).abs().amax(1) > limit).view(-1, *[1] * (x0.dim() - 1))
            if not bad.any():
                break
            if retry == self.backtrack:
                out = torch.where(bad, x0, out)
                break
            lam_b = torch.where(bad.flatten(), lam_b / 2, lam_b)
            out = torch.where(bad, step(lam_b), out)
        return out


def check_region(region: torch.Tensor, images: torch.Tensor) -> None:
    """Refuse a region that does not broadcast to the images (n, C, H, W) or has values outside [0, 1]."""
    if region.dim() != images.dim() or any(r not in (1, n) for r, n in zip(region.shape, images.shape)):
        raise ConfigError(f"region of shape {tuple(region.shape)} does not fit images of shape "
                          f"{tuple(images.shape)}: give one value per pixel (n, 1, H, W) or per image and channel")
    if not region.is_floating_point() or not torch.isfinite(region).all() or region.min() < 0 or region.max() > 1:
        raise ConfigError("region values must be finite floats in [0, 1] (1: free to change, 0: kept)")


class InRegion(Guidance):
    """Changes confined to a region: x0 <- x_ref + m (P(x0) - x_ref) before the last step, P(x0) at t = 0.

    ``inner`` is the projecting guidance P (a back-projection), ``reference`` the images to keep (n, C, H, W)
    and ``region`` m in [0, 1], broadcastable to them (1: free, 0: kept). As in DiffEdit (Couairon et al. 2022)
    with the region in place of its noise-difference mask, outside the region every step is pulled back to the
    reference while the prior redraws what is inside; the last step is ``inner``'s alone, so its constraint holds
    exactly at the end.

    >>> g = InRegion(Guidance(), torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    >>> g.project(torch.ones(1, 1, 2, 2), t=10).flatten().tolist(), g.project(torch.ones(1, 1, 2, 2), t=0).sum().item()
    ([1.0, 0.0, 0.0, 0.0], 4.0)
    """

    def __init__(self, inner: Guidance, reference: torch.Tensor, region: torch.Tensor):
        if inner.needs_grad:
            raise ConfigError("a region confines a projecting guidance (NLBP / DDNM); gradient methods have no "
                              "projection to confine: use method='nlbp' or drop the region")
        check_region(region, reference)
        self.inner, self.reference, self.region = inner, reference, region.to(reference)

    def project(self, x0: torch.Tensor, t: int) -> torch.Tensor:
        out = self.inner.project(x0, t)
        return out if t == 0 else torch.lerp(self.reference.to(out), out, self.region.to(out))

    def begin(self, n: int) -> None:
        if n != len(self.reference):
            raise ConfigError(f"a region for {len(self.reference)} images used to sample {n}")
        self.inner.begin(n)

    def use_graphs(self, on: bool) -> None:
        self.inner.use_graphs(on)


class DPS(Guidance):
    """Diffusion posterior sampling: x_{t-1} -= zeta grad_{x_t} ||y - A(x0(x_t))|| (per-sample norm)."""

    needs_grad = True

    def __init__(self, op, y: torch.Tensor, zeta: float | Schedule = 0.5, mask: torch.Tensor | None = None):
        self.op = as_operator(op)
        self.y, self.zeta = y, _schedule(zeta)
        self.mask = None if mask is None else mask.bool()

    def loss(self, x0, t):
        r = self.y.to(x0) - self.op.A(x0)
        if self.mask is not None:
            r = r[:, self.mask.to(r.device)]
        return r.flatten(1).norm(dim=1)

    def step_size(self, t):
        return self.zeta(t)


class PaperDPS(Guidance):
    """The authors' DPS variant: a gradient step on the predicted x0, x0 <- x0 - zeta grad_x0 ||y - A(x0)||^2
    (squared loss, no backpropagation through the UNet). Ours (`DPS`, Chung et al. 2023) differentiates the
    unsquared norm through the UNet and steps x_{t-1}; this one costs one operator gradient per step and no
    UNet backward. ``zeta`` 0.5 as in their later code."""

    def __init__(self, op, y: torch.Tensor, zeta: float | Schedule = 0.5, mask: torch.Tensor | None = None):
        self.op = as_operator(op)
        self.y, self.zeta = y, _schedule(zeta)
        self.mask = None if mask is None else mask.bool()

    def project(self, x0, t):
        with torch.enable_grad():
            x = x0.detach().requires_grad_(True)
            r = self.y.to(x) - self.op.A(x)
            if self.mask is not None:
                r = r[:, self.mask.to(r.device)]
            grad = torch.autograd.grad(r.pow(2).sum(), x)[0]
        return (x0 - self.zeta(t) * grad).detach()


class ClassifierGuidance(Guidance):
    """Classifier guidance through x0: x_{t-1} -= scale grad_{x_t} BCE(c(x0(x_t)), target) on the
    enforced attributes (target: binary labels, or logits whose sign gives the label)."""

    needs_grad = True

    def __init__(self, classifier, target: torch.Tensor, scale: float | Schedule = 1.0,
                 mask: torch.Tensor | None = None):
        self.classifier = classifier
        self.target = (target > 0).float() if target.min() < 0 else (target > 0.5).float()
        self.scale = _schedule(scale)
        self.mask = None if mask is None else mask.bool()

    def loss(self, x0, t):
        logits = self.classifier(x0)
        bce = F.binary_cross_entropy_with_logits(logits, self.target.to(logits), reduction="none")
        if self.mask is not None:
            bce = bce[:, self.mask.to(bce.device)]
        return bce.sum(1)

    def step_size(self, t):
        return self.scale(t)

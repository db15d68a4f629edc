"""Forward models y = A(x) with a pseudo-inverse, in the style of deepinv's Physics.

Every operator has ``A(x)`` (also ``op(x)``), ``pinv(y)`` and ``back_project(x, y, lam)``.
Completion operators (an SPNN) add ``complete(x) -> (y, latents)`` and ``inverse(y, latents)``;
linear operators add ``A_adjoint``. Composition with a pixel-wise bijection phi gives exact non-linear
operators y = A(phi(x)) whose natural pseudo-inverse is phi^-1(A+ y) (coordinate consistency).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spnn.calibration import calibration_of
from spnn.checks import is_level
from spnn.data.common import attribute_index
from spnn.errors import ConfigError
from spnn.implications import setting_key
from spnn.network import PINV_MODES, SPNN

__all__ = ["Operator", "SPNNOperator", "FeedbackEmulator", "LinearOperator", "AveragePool", "Inpainting",
           "Colorization", "Identity", "MatrixOperator", "Composed", "Chain", "as_operator", "edit_target",
           "edit_bounds", "keep_bounds", "check_keep", "level_of", "check_changes", "LATENT_SOURCES"]

LATENT_SOURCES = ("logits", "labels")  # what NLBP's learned-mode target latents are computed from


def _lam(lam, x: torch.Tensor) -> torch.Tensor | float:
    """A scalar, or a per-sample tensor (B,) broadcast over the remaining dims."""
    if isinstance(lam, torch.Tensor) and lam.dim() > 0:
        return lam.to(x).reshape(-1, *([1] * (x.dim() - 1)))
    return float(lam)


class Operator(nn.Module):
    """Base class: ``A(x)``, ``pinv(y)``, ``back_project(x, y, lam)``."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the field's notation
        raise NotImplementedError

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(x)

    def back_project(self, x: torch.Tensor, y: torch.Tensor, lam=1.0) -> torch.Tensor:
        raise NotImplementedError


class LinearOperator(Operator):
    """Linear A with closed-form pseudo-inverse: back-projection x + lam A+(y - A x)."""

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        raise NotImplementedError

    def back_project(self, x, y, lam=1.0):
        return x + _lam(lam, x) * self.pinv(y - self.A(x))


class SPNNOperator(Operator):
    """An SPNN as a completion operator; back-projection is NLBP in completed coordinates:

    x' = G^-1( G(x) + lam [ G(g+(y)) - G(g+(g(x))) ] ).

    By the right-inverse property G(g+(v)) = (v, Z(v)) with Z(v) the latents chosen by the pseudo-inverse,
    so x' = G^-1( g(x) + lam (y - g(x)), q(x) + lam (Z(y) - Z(g(x))) ): one completion, one inverse
    (natural mode: Z is constant and the latents of x are kept, so the inverse reuses the completion's s and t
    values and costs only the mixings), plus one r pass (learned mode).
    Z(y) is cached per target tensor.

    ``latent_step`` B (learned mode) in [0, 1] scales the latents' move: q(x) + lam B (Z(y) - Z(g(x))); 1 is the
    paper's NLBP, 0 keeps q(x) as the natural mode does; g(x') = y holds for every B (lam = 1).

    ``latents_from`` (learned mode): ``"logits"`` (the paper) takes Z at the logits themselves; ``"labels"`` at
    the labels they stand for, l(v) = c tanh(v / tau) with c the SPNN's "attribute on" logit and tau its
    ``label_temperature`` (`spnn.calibration`): the latents move as q(x) + lam B (Z(l(y)) - Z(l(g(x)))), so
    a sample whose attributes already match y keeps its own latents instead of being pulled to the latents that
    encode the original image; g(x') = y is unchanged. Attribute SPNNs only.
    """

    def __init__(self, net: SPNN, mode: str = "learned", origin: str = "zero", latent_step: float = 1.0,
                 latents_from: str = "logits", label_temperature: float | None = None):
        super().__init__()
        if mode not in PINV_MODES:
            raise ConfigError(f"unknown pseudo-inverse mode {mode!r}; choose one of {PINV_MODES}")
        if not 0.0 <= float(latent_step) <= 1.0:
            raise ConfigError(f"latent_step {latent_step} is outside [0, 1]; use 1 for the paper's NLBP, 0 to keep "
                              "the latents of x")
        if mode == "natural" and float(latent_step) != 1.0:
            raise ConfigError("latent_step scales the learned mode's latent move; the natural mode keeps the latents "
                              "of x already; use mode='learned' or drop latent_step")
        if latents_from not in LATENT_SOURCES:
            raise ConfigError(f"unknown latents_from {latents_from!r}; choose one of {LATENT_SOURCES}")
        if latents_from == "labels" and mode == "natural":
            raise ConfigError("latents_from='labels' chooses the learned mode's target latents; the natural mode "
                              "keeps the latents of x; use mode='learned' or drop latents_from")
        if latents_from == "labels" and not net.attribute_names:
            raise ConfigError("latents_from='labels' needs an SPNN whose outputs are attribute logits (it has no "
                              "attribute names); use latents_from='logits'")
        if label_temperature is not None and not float(label_temperature) > 0:
            raise ConfigError(f"label_temperature must be a positive number, got {label_temperature!r}")
        self.net, self.mode, self.origin, self.latent_step = net, mode, origin, float(latent_step)
        self.latents_from, self.label_temperature = latents_from, label_temperature
        self.input_shape, self.output_shape = net.input_shape, net.output_shape
        self.attribute_names = net.attribute_names
        self._cache: tuple | None = None

    def A(self, x):
        return self.net(x)

    def complete(self, x):
        """G(x); in natural mode it carries the s and t values that `back_project` reuses."""
        return self.net.complete(x, return_conditioners=self.mode == "natural")

    def inverse(self, y, latents):
        return self.net.inverse(y, latents)

    def pinv(self, y):
        return self.net.pinv(y, mode=self.mode, origin=self.origin)

    def labels_of(self, y: torch.Tensor) -> torch.Tensor:
        """l(y) = c tanh(y / tau): the logits read as the labels they stand for (``latents_from="labels"``)."""
        calibration = calibration_of(self.net)
        tau = self.label_temperature if self.label_temperature is not None else calibration.label_temperature
        return calibration.logit * torch.tanh(y / tau)

    def pinv_latents(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Z(y): latents of G(g+(y)); Z(l(y)) with ``latents_from="labels"``."""
        if self.mode == "learned":
            return self.net.learned_latents(self.labels_of(y) if self.latents_from == "labels" else y)
        return self.net.pinv(y, mode=self.mode, origin=self.origin, return_latents=True)[1]

    def target_latents(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Z(y), cached while the same target tensor (same object, unmodified) is passed again."""
        key = (y._version, y.shape, y.dtype, y.device, self.mode, self.origin, self.latents_from,
               self.label_temperature)
        if self._cache is not None:
            ref, cached_key, value = self._cache
            if ref() is y and cached_key == key:
                return value
        value = self.pinv_latents(y)
        self._cache = (weakref.ref(y), key, value)
        return value

    def back_project(self, x, y, lam=1.0, target_latents=None, completion=None, form: str = "completion"):
        """``completion``: G(x) if already computed (saves a forward pass). ``form="paper"``: the authors'
        arithmetic, G^-1(G(x) + lam [G(g+(y)) - G(g+(g(x)))]) with both completions recomputed (the same map
        up to rounding, two more completions and pseudo-inverses)."""
        if completion is None:
            completion = self.complete(x)
        gx, qx = completion
        if form == "paper":
            if self.latents_from != "logits":
                raise ConfigError("form='paper' is the authors' arithmetic, with latents from the logits; use "
                                  "form='completion' with latents_from='labels'")
            y_tar, z_tar = self.net.complete(self.pinv(y))
            y_proj, z_proj = self.net.complete(self.pinv(gx))
            latents = [q + _lam(lam, q) * self.latent_step * (a - b) for q, a, b in zip(qx, z_tar, z_proj)]
            return self.net.inverse(gx + _lam(lam, gx) * (y_tar - y_proj), latents)
        if form != "completion":
            raise ConfigError(f"unknown back-projection form {form!r}; use 'completion' or 'paper'")
        lam_y = _lam(lam, gx)
        y_new = gx + lam_y * (y - gx)
        if self.mode == "natural":  # Z is constant: the null-space part of x is kept exactly, and so are
            # the s and t values computed from it, which the inverse reuses instead of recomputing
            return self.net.inverse(y_new, qx, getattr(completion, "conditioners", None))
        if self.latent_step == 0.0:
            return self.net.inverse(y_new, qx)
        zy = target_latents if target_latents is not None else self.target_latents(y)

        def moved(i: int, zg: torch.Tensor) -> torch.Tensor:  # q + lam B (Z(y) - Z(g(x)))
            return qx[i] + _lam(lam, qx[i]) * self.latent_step * (zy[i] - zg)

        source = self.labels_of(gx) if self.latents_from == "labels" else gx
        # Z(g(x)) and the inverse in one walk (`SPNN.inverse_along_walk`): half the kernel launches; on a CPU at
        if len(gx) > 1 or gx.is_cuda:  # batch 1 two walks were measured faster
            return self.net.inverse_along_walk(y_new, source, moved)
        return self.net.inverse(y_new, [moved(i, z) for i, z in enumerate(self.net.learned_latents(source))])


class FeedbackEmulator(Operator):
    """A forward model known only as a black box, inverted through an SPNN emulator g ~ A with A's own residual:

    x' = G^-1( g(x) + lam (y - A(x)), q(x) ) (natural mode; learned mode moves the latents as `SPNNOperator`).

    The emulator's back-projection aimed at y + g(x) - A(x): each step corrects g's error at the current point
    (a quasi-Newton step with g's inverse standing for A's), so iterates meet A(x) = y, not g(x) = y. Costs one
    black-box evaluation per step and no gradient of it; where g = A it is NLBP with g.

    >>> import torch
    >>> from spnn.network import SPNN
    >>> emulator = SPNNOperator(SPNN.build((3, 8, 8), (3, 4, 4), hidden=4), mode="natural")
    >>> op = FeedbackEmulator(emulator, lambda x: emulator.A(x) + 0.1)  # a black box the emulator misses by 0.1
    >>> x, y = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 4, 4)
    >>> for _ in range(3):
    ...     x = op.back_project(x, y)
    >>> bool((op.A(x) - y).abs().max() < 1e-4)
    True
    """

    def __init__(self, emulator: SPNNOperator, black_box):
        super().__init__()
        if not isinstance(emulator, SPNNOperator):
            raise ConfigError(f"the emulator must be an SPNNOperator, got {type(emulator).__name__}")
        if not callable(getattr(black_box, "A", black_box)):
            raise ConfigError("the black box must be callable (x -> y) or have A(x)")
        self.emulator, self.black_box = emulator, black_box
        self.input_shape, self.output_shape = emulator.input_shape, emulator.output_shape

    def A(self, x):  # noqa: N802
        return self.black_box.A(x) if hasattr(self.black_box, "A") else self.black_box(x)

    def complete(self, x):
        return self.emulator.complete(x)

    def pinv(self, y):
        return self.emulator.pinv(y)

    def back_project(self, x, y, lam=1.0, completion=None, form: str = "completion"):
        if completion is None:
            completion = self.emulator.complete(x)
        with torch.no_grad():
            residual = y - self.A(x)
        return self.emulator.back_project(x, completion[0] + residual, lam, completion=completion, form=form)


_WRAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def as_operator(op, mode: str = "learned") -> Operator:
    """Wrap a bare `SPNN` as an `SPNNOperator` (one per network and mode, so its target cache
    persists across calls); operators pass through."""
    if isinstance(op, SPNN):
        per_net = _WRAPPED.setdefault(op, {})
        if mode not in per_net:
            per_net[mode] = SPNNOperator(op, mode=mode)
        return per_net[mode]
    if isinstance(op, Operator):
        return op
    raise TypeError(f"expected an spnn Operator or SPNN, got {type(op).__name__}")


class Identity(LinearOperator):
    """A = I (denoising)."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.input_shape = self.output_shape = tuple(shape)

    def A(self, x):
        return x

    def A_adjoint(self, y):
        return y

    def pinv(self, y):
        return y


class AveragePool(LinearOperator):
    """Super-resolution degradation: k x k average pooling. A+ = k^2 A^T = nearest upsampling."""

    def __init__(self, shape: Sequence[int], factor: int):
        super().__init__()
        c, h, w = shape
        if h % factor or w % factor:
            raise ConfigError(f"image size {h}x{w} is not divisible by the pooling factor {factor}")
        self.factor = int(factor)
        self.input_shape = (c, h, w)
        self.output_shape = (c, h // factor, w // factor)

    def A(self, x):
        return F.avg_pool2d(x, self.factor)

    def A_adjoint(self, y):
        return F.interpolate(y, scale_factor=self.factor, mode="nearest") / self.factor**2

    def pinv(self, y):
        return F.interpolate(y, scale_factor=self.factor, mode="nearest")


class Inpainting(LinearOperator):
    """Keep the pixels where ``mask`` is 1 (others set to 0): A = A^T = A+ = diag(mask)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", (mask > 0).to(torch.get_default_dtype()))
        self.input_shape = self.output_shape = tuple(mask.shape)

    def A(self, x):
        return x * self.mask.to(x)

    A_adjoint = A
    pinv = A

    @classmethod
    def box(cls, shape: Sequence[int], top: int, left: int, height: int, width: int) -> Inpainting:
        mask = torch.ones(shape)
        mask[:, top:top + height, left:left + width] = 0
        return cls(mask)


class Colorization(LinearOperator):
    """Grayscale: channel mean (3, H, W) -> (1, H, W). A+ y = y repeated over the 3 channels."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        c, h, w = shape
        self.channels = c
        self.input_shape, self.output_shape = (c, h, w), (1, h, w)

    def A(self, x):
        return x.mean(1, keepdim=True)

    def A_adjoint(self, y):
        return y.expand(-1, self.channels, -1, -1) / self.channels

    def pinv(self, y):
        return y.expand(-1, self.channels, -1, -1).clone()


class MatrixOperator(LinearOperator):
    """A generic matrix on flattened inputs; A+ from the SVD (small problems only)."""

    def __init__(self, matrix: torch.Tensor, input_shape: Sequence[int], rcond: float = 1e-10):
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.register_buffer("matrix_pinv", torch.linalg.pinv(matrix.double(), rtol=rcond).to(matrix))
        self.input_shape = tuple(input_shape)
        self.output_shape = (matrix.shape[0],)

    def A(self, x):
        return x.reshape(len(x), -1) @ self.matrix.to(x).T

    def A_adjoint(self, y):
        return (y @ self.matrix.to(y)).reshape(len(y), *self.input_shape)

    def pinv(self, y):
        return (y @ self.matrix_pinv.to(y).T).reshape(len(y), *self.input_shape)


class Composed(Operator):
    """y = op(phi(x)) with phi an invertible pixel-wise map (``phi.forward``/``phi.inverse``):
    back-projection in phi coordinates, x' = phi^-1(op.back_project(phi(x), y)); pinv = phi^-1(op.pinv(y))."""

    def __init__(self, op: Operator, phi: nn.Module):
        super().__init__()
        self.op, self.phi = op, phi
        self.input_shape, self.output_shape = op.input_shape, op.output_shape

    def A(self, x):
        return self.op.A(self.phi(x))

    def pinv(self, y):
        return self.phi.inverse(self.op.pinv(y))

    def back_project(self, x, y, lam=1.0):
        return self.phi.inverse(self.op.back_project(self.phi(x), y, lam))


class Chain(Operator):
    """y = outer(inner(x)) with ``inner`` linear (e.g. an SPNN classifier on a downsampled image).

    Back-projection runs in two exact steps: v' = outer.back_project(inner(x), y, lam), then the linear
    x' = x + inner+(v' - inner(x)); with lam = 1, outer(inner(x')) = y. pinv = inner+(outer+(y)).
    """

    def __init__(self, outer: Operator, inner: LinearOperator):
        super().__init__()
        self.outer, self.inner = as_operator(outer), inner
        self.input_shape, self.output_shape = inner.input_shape, self.outer.output_shape
        self.attribute_names = getattr(self.outer, "attribute_names", None)

    def A(self, x):
        return self.outer.A(self.inner.A(x))

    def pinv(self, y):
        return self.inner.pinv(self.outer.pinv(y))

    def back_project(self, x, y, lam=1.0):
        v = self.inner.A(x)
        return self.inner.back_project(x, self.outer.back_project(v, y, lam), 1.0)


def check_changes(changes: dict[str, float], logit: float, levels: dict[str, float] | None = None) -> None:
    """Attribute changes are ``{name: 1 (on) | 0 or -1 (off)}`` and the logit level (and each of ``levels``, a
    level per attribute) a finite positive number."""
    if not isinstance(changes, dict) or not changes:
        raise ConfigError(f"attributes must be a non-empty dict {{name: 1 or 0}}, got {changes!r}")
    for name, value in changes.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if v not in (1.0, 0.0, -1.0):
            raise ConfigError(f"attribute {name}={value!r}: use 1 (on) or 0 (off)")
    if not is_level(logit):
        raise ConfigError(f"logit = {logit!r}: the bound level must be a finite positive number (e.g. 4)")
    if levels is not None:
        if not isinstance(levels, dict):
            raise ConfigError(f"levels must be a mapping {{name: logit level}}, got {type(levels).__name__}")
        for name, level in levels.items():
            if not is_level(level):
                raise ConfigError(f"the level of {name!r} = {level!r}: the bound level must be a finite positive "
                                  "number (e.g. 4)")


def level_of(levels: dict[str, float] | None, name: str, value: float, logit: float) -> float:
    """The bound level of setting ``name`` to ``value``: ``levels["NAME=1"]`` (on) or ``["NAME=0"]`` (off), else
    ``levels["NAME"]`` (both directions), else ``logit``.

    >>> level_of({"Smiling": 6.0, "Smiling=0": 8.0}, "Smiling", 0, 3.5), level_of({"Smiling": 6.0}, "Smiling", 1, 3.5)
    (8.0, 6.0)
    """
    levels = levels or {}
    return float(levels.get(setting_key(name, value), levels.get(name, logit)))


def edit_target(op: Operator, y: torch.Tensor, changes: dict[str, float], logit: float = 4.0,
                levels: dict[str, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and mask that set named attributes: value 1 -> +logit, 0 (or -1) -> -logit, with a level of
    ``levels`` in place of logit for the attributes it names (`level_of`).

    Returns (y_edit, mask): coordinates not named keep y and are not enforced (mask 0).
    """
    check_changes(changes, logit, levels)
    levels = levels or {}
    names = getattr(op, "attribute_names", None)
    if not names:
        raise ConfigError("this operator has no attribute names; pass a target and mask directly")
    y_edit = y.clone()
    mask = torch.zeros(y.shape[-1], dtype=torch.bool, device=y.device)
    for name, value in changes.items():
        i = attribute_index(names, name)
        level = level_of(levels, name, value, logit)
        y_edit[..., i] = level if float(value) > 0 else -level
        mask[i] = True
    return y_edit, mask


def edit_bounds(op: Operator, n: int, changes: dict[str, float], logit: float = 4.0, *,
                levels: dict[str, float] | None = None, device=None,
                dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided targets that set named attributes: value 1 -> logit >= +logit, 0 -> logit <= -logit
    (a level of ``levels`` in place of logit for the attributes it names: `level_of`).

    Returns (lower, upper) of shape (n, k) for ``BackProjection(bounds=...)``; coordinates not named
    are free (+-inf). A logit already beyond the bound is not moved, so the edit changes as little as
    the constraint allows.

    >>> net = SPNN.build((3, 8, 8), (4,), attribute_names=["A", "B", "C", "D"])
    >>> lower, upper = edit_bounds(SPNNOperator(net), 1, {"B": 1, "D": 0}, logit=3.0)
    >>> lower.tolist(), upper.tolist()
    ([[-inf, 3.0, -inf, -inf]], [[inf, inf, inf, -3.0]])
    >>> edit_bounds(SPNNOperator(net), 1, {"B": 1, "D": 0}, logit=3.0, levels={"D": 5.0})[1].tolist()
    [[inf, inf, inf, -5.0]]
    """
    check_changes(changes, logit, levels)
    levels = levels or {}
    names = getattr(op, "attribute_names", None)
    if not names:
        raise ConfigError("this operator has no attribute names; pass bounds directly")
    k = op.output_shape[-1]
    lower = torch.full((n, k), -float("inf"), device=device, dtype=dtype)
    upper = torch.full((n, k), float("inf"), device=device, dtype=dtype)
    for name, value in changes.items():
        i = attribute_index(names, name)
        level = level_of(levels, name, value, logit)
        if float(value) > 0:
            lower[:, i] = level
        else:
            upper[:, i] = -level
    return lower, upper


def check_keep(margin) -> None:
    """A keeping margin (`keep_bounds`) is a finite positive logit."""
    if not is_level(margin):
        raise ConfigError(f"keep = {margin!r}: the keeping margin must be a finite positive logit (e.g. 0.5)")


def keep_bounds(bounds: tuple[torch.Tensor, torch.Tensor], y0: torch.Tensor,
                margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds that also keep each free coordinate on the side of the original logit ``y0``:
    y >= min(y0, margin) where y0 > 0, y <= max(y0, -margin) where y0 < 0 (the original meets every such bound).

    Coordinates that ``bounds`` already constrain (a finite side) are left as they are.

    >>> inf = float("inf")
    >>> lower, upper = torch.tensor([[3.0, -inf, -inf]]), torch.full((1, 3), inf)
    >>> lo, up = keep_bounds((lower, upper), torch.tensor([[-5.0, 6.0, -0.5]]), margin=2.0)
    >>> lo.tolist(), up.tolist()
    ([[3.0, 2.0, -inf]], [[inf, inf, -0.5]])
    """
    check_keep(margin)
    margin, (lower, upper) = float(margin), bounds
    y0 = y0.to(lower).reshape(lower.shape)
    free = torch.isinf(lower) & torch.isinf(upper)
    lower = torch.where(free & (y0 > 0), torch.minimum(y0, torch.full_like(y0, margin)), lower)
    upper = torch.where(free & (y0 < 0), torch.maximum(y0, torch.full_like(y0, -margin)), upper)
    return lower, upper

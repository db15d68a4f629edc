"""Orthogonal 1x1 channel mixing: W x with W^T W = I, so W^-1 = W^T exactly.

The matrix is built once per call in at least float32 (also under reduced-precision autocast) and
applied as a 1x1 convolution, on CUDA with TF32 off for both (PyTorch lets cuDNN use TF32 by default,
which breaks the float32 Penrose identities by ~1e-3). Cayley costs a dense C x C solve (O(C^3)); Householder costs
O(k C^2) for k reflections and is the choice for wide layers.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from spnn.caching import FrozenCache
from spnn.errors import ConfigError

__all__ = ["exact_float32", "OrthogonalMixing", "CayleyMixing", "HouseholderMixing", "make_mixing", "MIXINGS"]


@contextmanager
def _no_tf32():
    """TF32 off for cuDNN convolutions and CUDA matrix products (other cuDNN flags as they are), so that W is
    orthogonal and W x, W^T h round-trip to float32 rounding even where a program enabled TF32 globally."""
    cudnn = torch.backends.cudnn
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                         allow_tf32=False):
            yield
    finally:
        torch.set_float32_matmul_precision(precision)


def exact_float32(t: torch.Tensor):
    """`_no_tf32` for CUDA tensors, nothing otherwise: for the computations an SPNN must repeat bit for bit
    (the mixing, the coupling's s, t and r nets)."""
    return _no_tf32() if t.is_cuda else nullcontext()


def _matrix_dtype(param: torch.Tensor) -> torch.dtype:
    return torch.promote_types(param.dtype, torch.float32)


class OrthogonalMixing(nn.Module):
    """Base class: subclasses implement `matrix()` returning an orthogonal C x C matrix."""

    kind: str = ""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = int(channels)
        self._cache = FrozenCache()

    def matrix(self) -> torch.Tensor:
        """W, kept while the weight is frozen (`FrozenCache`: sampling then pays the O(C^3) Cayley solve once, not
        twice per step)."""
        return self._cache.get([self.weight], self._exact_matrix)

    def _exact_matrix(self) -> torch.Tensor:
        with exact_float32(self.weight):
            return self._matrix()

    def _matrix(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def options(self) -> dict:
        """Constructor options (besides ``channels``) that rebuild this module."""
        return {}

    @staticmethod
    def _conv(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with exact_float32(x):  # cuDNN's default TF32 convolutions would leave ~1e-3 round-trip errors
            return F.conv2d(x, w.to(x.dtype)[:, :, None, None])

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """h = W x (per pixel). Pass a precomputed ``w`` to reuse it."""
        return self._conv(self.matrix() if w is None else w, x)

    def inverse(self, h: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """x = W^T h, the exact inverse of an orthogonal W."""
        return self._conv((self.matrix() if w is None else w).T, h)


class CayleyMixing(OrthogonalMixing):
    """Cayley transform W = (I + A + eps I)^-1 (I - A), A = B - B^T skew; B = 0 gives W = I.

    I + A is always invertible for skew A, so the default ``eps = 0`` needs no regulariser and W is orthogonal
    to rounding. ``eps > 0`` and ``solve_dtype`` reproduce the authors' code versions (their 1e-6 or 1e-4,
    solved in the model's dtype or in float32; `spnn.convert.AUTHORS_VERSIONS`): W is then orthogonal only
    to about eps, and the inverse, W^T as theirs, is exact only to that level.

    >>> m = CayleyMixing(4)
    >>> bool(torch.allclose(m.matrix(), torch.eye(4)))
    True
    """

    kind = "cayley"

    def __init__(self, channels: int, eps: float = 0.0, solve_dtype: str | None = None):
        super().__init__(channels)
        if not (eps >= 0 and eps < 1):
            raise ConfigError(f"Cayley eps must be in [0, 1), got {eps}")
        if solve_dtype not in (None, "float32", "float64"):
            raise ConfigError(f"solve_dtype must be None, 'float32' or 'float64', got {solve_dtype!r}")
        self.eps, self.solve_dtype = float(eps), solve_dtype
        self.weight = nn.Parameter(torch.zeros(channels, channels))

    def options(self) -> dict:
        out = {}
        if self.eps:
            out["eps"] = self.eps
        if self.solve_dtype:
            out["solve_dtype"] = self.solve_dtype
        return out

    def _matrix(self) -> torch.Tensor:
        dtype = _matrix_dtype(self.weight)
        solve = getattr(torch, self.solve_dtype) if self.solve_dtype else dtype
        with torch.autocast(self.weight.device.type, enabled=False):
            b = self.weight.to(solve)
            a = b - b.T
            eye = torch.eye(self.channels, dtype=solve, device=b.device)
            lhs = eye + a + self.eps * eye if self.eps else eye + a
            return torch.linalg.solve(lhs, eye - a).to(dtype)


class HouseholderMixing(OrthogonalMixing):
    """Product of k Householder reflections W = H_k ... H_1, H_i = I - 2 v_i v_i^T / |v_i|^2.

    >>> m = HouseholderMixing(6, reflections=3)
    >>> w = m.matrix()
    >>> bool(torch.allclose(w @ w.T, torch.eye(6), atol=1e-6))
    True
    """

    kind = "householder"

    def __init__(self, channels: int, reflections: int = 8):
        super().__init__(channels)
        self.reflections = int(reflections)
        self.weight = nn.Parameter(torch.randn(self.reflections, channels))

    def options(self) -> dict:
        return {"reflections": self.reflections}

    def _matrix(self) -> torch.Tensor:
        dtype = _matrix_dtype(self.weight)
        with torch.autocast(self.weight.device.type, enabled=False):
            v = self.weight.to(dtype)
            v = v / v.norm(dim=1, keepdim=True)
            w = torch.eye(self.channels, dtype=dtype, device=v.device)
            for i in range(self.reflections):
                w = w - 2.0 * torch.outer(v[i], v[i] @ w)
            return w


MIXINGS: dict[str, type[OrthogonalMixing]] = {"cayley": CayleyMixing, "householder": HouseholderMixing}


def make_mixing(kind: str, channels: int, **options) -> OrthogonalMixing:
    """Build a mixing module by name ("cayley" or "householder")."""
    try:
        cls = MIXINGS[kind]
    except KeyError:
        raise ConfigError(f"unknown mixing {kind!r}; choose one of {sorted(MIXINGS)}") from None
    return cls(channels, **options)

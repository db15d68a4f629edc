"""Non-linear back-projection (NLBP) as a function.

x' = G^-1( G(x) + lam [ G(g+(y)) - G(g+(g(x))) ] ) for completion operators (SPNN) and
x' = x + lam A+(y - A x) for linear ones. With lam = 1, g(x') = y.
"""

from __future__ import annotations

import torch

from spnn.checks import check_batch, check_finite, check_lam, check_mask
from spnn.errors import ShapeError
from spnn.operators import as_operator

__all__ = ["nlbp"]


def nlbp(op, x: torch.Tensor, y: torch.Tensor, lam=1.0, mask: torch.Tensor | None = None,
         mode: str = "learned", grad: bool = False) -> torch.Tensor:
    """Back-project ``x`` towards the constraint A(x) = y.

    ``op``: an `Operator` or an `SPNN` (wrapped with pseudo-inverse ``mode``, "learned" or "natural").
    ``lam``: scalar or per-sample tensor (B,) in [0, 1]. ``mask``: boolean over output coordinates (broadcast to
    y); only masked coordinates are enforced, the others keep their current value A(x).
    ``grad``: keep the autograd graph (default: no graph).

    >>> from spnn import SPNN
    >>> net = SPNN.build((3, 8, 8), (4,), hidden=8)
    >>> x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 4)
    >>> bool(torch.allclose(net(nlbp(net, x, y)), y, atol=1e-5))
    True
    """
    op = as_operator(op, mode)
    check_lam(lam)
    mask = check_mask(mask)
    if not isinstance(y, torch.Tensor):
        raise ShapeError(f"y: expected a torch.Tensor, got {type(y).__name__}")
    check_batch(x, y, "x", "y")
    check_finite(y, "nlbp target y")
    if isinstance(lam, torch.Tensor) and lam.dim() > 0 and lam.numel() not in (1, len(x)):
        raise ShapeError(f"lam has {lam.numel()} values for {len(x)} samples; give one per sample or a scalar")
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        if mask is not None:
            y = torch.where(mask.to(y.device).bool(), y, op.A(x))
        return op.back_project(x, y, lam)

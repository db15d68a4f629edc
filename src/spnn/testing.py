"""Helpers for tests and benchmarks: give a fresh network non-trivial ("trained-like") weights."""

from __future__ import annotations

import torch
from torch import nn

from spnn.mixing import OrthogonalMixing
from spnn.subnets import SubNet

__all__ = ["perturb_"]


@torch.no_grad()
def perturb_(module: nn.Module, scale: float = 0.1, seed: int | None = 0) -> nn.Module:
    """Randomise the zero-initialised output layers of every s, t, r net (std ``scale``) and the
    mixing parameters, in place, so that s != 1, t != 0, r != 0 and W != I."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None

    def normal_(p: torch.Tensor, std: float) -> None:
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p) * std)

    for m in module.modules():
        if isinstance(m, SubNet):
            normal_(m.net[-1].weight, scale)
            normal_(m.net[-1].bias, scale)
        elif isinstance(m, OrthogonalMixing):
            normal_(m.weight, scale if m.kind == "cayley" else 1.0)
    return module

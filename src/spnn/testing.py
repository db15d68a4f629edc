"""Helpers for tests and benchmarks: give a fresh network non-trivial ("trained-like") weights, and write a tiny
set of models (8x8 prior and SPNN with the avatar attributes) for end-to-end runs in seconds."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from spnn.mixing import OrthogonalMixing
from spnn.subnets import SubNet

__all__ = ["perturb_", "write_tiny_models"]


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


def write_tiny_models(root: str | Path, calibrated: bool = True) -> Path:
    """Write ``root/prior`` (an 8x8 diffusers UNet, random) and ``root/spnn.safetensors`` (an 8x8 SPNN with the 22
    avatar attributes, perturbed; with the default edit calibration, which stores no choices, unless
    ``calibrated=False``)."""
    from spnn.calibration import EditCalibration
    from spnn.data.avatars import AVATAR_ATTRIBUTES
    from spnn.diffusion.prior import Prior, build_unet
    from spnn.network import SPNN

    root = Path(root)
    torch.manual_seed(0)
    Prior(build_unet(8, block_out_channels=(8, 8, 8), norm_num_groups=4)).save(root / "prior")
    net = perturb_(SPNN.build((3, 8, 8), (22,), hidden=8, attribute_names=AVATAR_ATTRIBUTES), 0.1)
    if calibrated:
        net.edit_calibration = EditCalibration().to_dict()
    net.save(root / "spnn.safetensors")
    return root

"""Metrics for generated, edited and restored images."""

from __future__ import annotations

import torch

__all__ = ["attribute_agreement", "consistency_error", "psnr"]


def attribute_agreement(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
    """Agreement of predicted attributes (logits > 0) with binary targets (or target logits > 0).

    Returns the mean over attributes and samples, the rate of samples with every (masked) attribute
    right, and the per-attribute mean. ``mask`` (bool over attributes) restricts the comparison.
    """
    pred = logits > 0
    want = target > 0 if target.dtype.is_floating_point and target.min() < 0 else target > 0.5
    ok = (pred == want).float()
    if mask is not None:
        ok = ok[:, mask.to(ok.device).bool()]
    return {"mean": float(ok.mean()), "all_correct": float(ok.prod(1).mean()),
            "per_attribute": ok.mean(0).tolist()}


def consistency_error(y_hat: torch.Tensor, y: torch.Tensor) -> dict:
    """|A(x_hat) - y|: mean absolute error and relative L2 error over the batch."""
    return {"mae": float((y_hat - y).abs().mean()),
            "relative_l2": float((y_hat - y).norm() / y.norm().clamp_min(1e-12))}


def psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-image PSNR in dB for images in [-1, 1] (range 2)."""
    mse = (x - ref).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(data_range**2 / mse)

"""Argument validation shared by blocks, networks and operators."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spnn.errors import ShapeError

__all__ = ["check_shape", "check_finite"]


def check_shape(t: torch.Tensor, expected: Sequence[int], what: str) -> None:
    """Raise `ShapeError` unless ``t`` is a batch of per-sample shape ``expected``.

    >>> check_shape(torch.zeros(2, 3, 4, 4), (3, 4, 4), "input")
    """
    expected = tuple(int(e) for e in expected)
    if not isinstance(t, torch.Tensor):
        raise ShapeError(f"{what}: expected a torch.Tensor, got {type(t).__name__}")
    got = tuple(t.shape[1:])
    if t.dim() != len(expected) + 1 or got != expected:
        hint = ""
        if t.dim() == len(expected):
            hint = " (missing batch dimension? use x.unsqueeze(0))"
        elif t.dim() == len(expected) + 1 and len(expected) == 3 and got[0] != expected[0]:
            hint = f" (wrong channel count: {got[0]} instead of {expected[0]})"
        elif t.dim() == len(expected) + 1 and len(expected) == 3:
            hint = f" (wrong spatial size: {got[1]}x{got[2]} instead of {expected[1]}x{expected[2]})"
        raise ShapeError(
            f"{what}: expected shape (batch, {', '.join(map(str, expected))}), "
            f"got {tuple(t.shape)}{hint}"
        )


def check_finite(t: torch.Tensor, what: str) -> None:
    """Raise `ShapeError` if ``t`` holds NaN or infinite values."""
    if not torch.isfinite(t).all():
        n_bad = int((~torch.isfinite(t)).sum())
        raise ShapeError(
            f"{what}: contains {n_bad} NaN/inf values; clean the input (e.g. torch.nan_to_num) "
            "or find where they were produced"
        )

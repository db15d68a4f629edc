"""Penrose diagnostics: how exactly a network satisfies the pseudo-inverse identities."""

from __future__ import annotations

import torch

from spnn.errors import ShapeError
from spnn.network import PINV_MODES, SPNN

__all__ = ["penrose_report", "relative_error", "format_report"]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a - b| / |b| over the whole batch (|b| floored at the dtype's tiny)."""
    den = b.norm().clamp_min(torch.finfo(b.dtype).tiny)
    return float((a - b).norm() / den)


@torch.no_grad()
def penrose_report(net: SPNN, x: torch.Tensor, y: torch.Tensor | None = None,
                   modes: tuple[str, ...] = PINV_MODES) -> dict:
    """Relative residuals of the identities, for each pseudo-inverse mode.

    - ``inverse``: G^-1(G(x)) vs x;
    - ``<mode>.g_pinv_g``: g(g+(g(x))) vs g(x);
    - ``<mode>.pinv_g_pinv``: g+(g(g+(y))) vs g+(y);
    - ``<mode>.right_inverse``: g(g+(y)) vs y;
    - ``<mode>.pinv_mean_square``: mean square of g+(g(x)) (not a residual).

    ``y`` defaults to standard normal samples of the output shape.
    """
    if len(x) == 0:
        raise ShapeError("penrose_report: the batch x is empty, so there is nothing to measure; pass at least one "
                         "input")
    if y is None:
        gen = torch.Generator(device="cpu").manual_seed(0)
        y = torch.randn((x.shape[0], *net.output_shape), generator=gen).to(x)
    gx, latents = net.complete(x)
    report: dict = {"inverse": relative_error(net.inverse(gx, latents), x)}
    for mode in modes:
        p_gx = net.pinv(gx, mode=mode)
        p_y = net.pinv(y, mode=mode)
        report[f"{mode}.g_pinv_g"] = relative_error(net(p_gx), gx)
        report[f"{mode}.pinv_g_pinv"] = relative_error(net.pinv(net(p_y), mode=mode), p_y)
        report[f"{mode}.right_inverse"] = relative_error(net(p_y), y)
        report[f"{mode}.pinv_mean_square"] = float(p_gx.pow(2).mean())
    return report


def format_report(report: dict) -> str:
    """A two-column table of a `penrose_report`."""
    width = max(len(k) for k in report)
    return "\n".join(f"{k:<{width}}  {v:.3e}" for k, v in report.items())

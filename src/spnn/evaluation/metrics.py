"""Metrics for generated, edited and restored images."""

from __future__ import annotations

import math

import torch

from spnn.errors import ConfigError

__all__ = ["attribute_agreement", "consistency_error", "psnr", "rmse", "nearest_is_own", "nearest_same_label_rmse",
           "high_frequency_ratio", "contrast_ratio", "same_label_draw", "rate_interval"]


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


def rmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample root mean square difference."""
    return (a - b).flatten(1).pow(2).mean(1).sqrt()


def nearest_is_own(recon: torch.Tensor, originals: torch.Tensor, sources: torch.Tensor | None = None) -> float:
    """Rate at which reconstruction i's nearest original (Euclidean, in pixels or any features) is its source,
    original ``sources[i]`` (default: original i): 1 means each reconstruction identifies its source among all of
    them; chance is 1 / len(originals). ``originals`` may hold more faces than ``recon`` (distractors).

    >>> x = torch.eye(4)
    >>> nearest_is_own(x + 0.1, x), nearest_is_own(x.flip(0), x), nearest_is_own(x[2:], x, torch.tensor([2, 0]))
    (1.0, 0.0, 0.5)
    """
    d = torch.cdist(recon.flatten(1).double(), originals.flatten(1).double())
    own = torch.arange(len(recon)) if sources is None else sources
    return float((d.argmin(1) == own.to(d.device)).double().mean())


def same_label_draw(labels: torch.Tensor, pool_labels: torch.Tensor, generator: torch.Generator | None = None,
                    exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Per row of ``labels``, the index of a random ``pool`` entry with exactly that label vector (another person
    with the same attributes), -1 where the pool has none; ``exclude`` (per row, a pool index or -1) is never drawn.

    >>> same_label_draw(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[1, 0], [0, 1], [0, 1]])).tolist()[1]
    -1
    """
    out = torch.full((len(labels),), -1, dtype=torch.long)
    for i in range(len(labels)):
        same = (pool_labels == labels[i]).all(1).nonzero().flatten()
        if exclude is not None:
            same = same[same != exclude[i]]
        if len(same):
            out[i] = same[torch.randint(len(same), (1,), generator=generator)]
    return out


def nearest_same_label_rmse(images: torch.Tensor, labels: torch.Tensor, pool: torch.Tensor,
                            pool_labels: torch.Tensor) -> torch.Tensor:
    """Per image, the RMSE to the nearest *other* image of ``pool`` with exactly the same label vector (another
    person with the same attributes); NaN where the pool has none. Pool entries equal to the image are skipped."""
    out = torch.full((len(images),), float("nan"), dtype=torch.float64)
    flat, pflat = images.flatten(1).double(), pool.flatten(1).double()
    for i in range(len(images)):
        same = (pool_labels == labels[i]).all(1)
        if same.any():
            d = (pflat[same] - flat[i]).pow(2).mean(1).sqrt()
            d = d[d > 0]
            if len(d):
                out[i] = d.min()
    return out


def high_frequency_ratio(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean squared discrete Laplacian of ``images`` over that of ``reference`` (real images): about 1 for images
    as detailed as real ones, above 1 for speckle or noise, below 1 for blur.
    Laplacian: 4 x(i, j) - x(i +- 1, j) - x(i, j +- 1), on interior pixels.

    >>> x = torch.rand(8, 3, 16, 16)
    >>> high_frequency_ratio(x, x), high_frequency_ratio(x + 0.5 * torch.rand_like(x), x) > 1.1
    (1.0, True)
    """
    def energy(v: torch.Tensor) -> float:
        v = v.double()
        lap = (4 * v[..., 1:-1, 1:-1] - v[..., :-2, 1:-1] - v[..., 2:, 1:-1] - v[..., 1:-1, :-2] - v[..., 1:-1, 2:])
        return float(lap.pow(2).mean())

    return energy(images) / energy(reference)


def contrast_ratio(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean per-image pixel standard deviation of ``images`` over that of ``reference`` (real images): about 1 for
    images as contrasted as real ones, below 1 for washed-out ones (a prior that regresses colours to the mean).

    >>> x = torch.rand(8, 3, 16, 16)
    >>> contrast_ratio(x, x), round(contrast_ratio(0.5 * x, x), 6)
    (1.0, 0.5)
    """
    def spread(v: torch.Tensor) -> float:
        return float(v.double().flatten(1).std(1).mean())

    return spread(images) / spread(reference)


def rate_interval(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% for z = 1.96) of a rate observed on n trials (a success rate on 50 faces):
    (c - h, c + h), c = (p + z^2 / 2n) / (1 + z^2 / n), h = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n).

    >>> tuple(round(v, 3) for v in rate_interval(0.9, 50))
    (0.786, 0.957)
    >>> tuple(round(v, 3) for v in rate_interval(1.0, 50))  # never (1, 1): 50 of 50 does not mean always
    (0.929, 1.0)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n = {n!r}: a rate's interval needs the number of trials, a positive integer")
    if not 0 <= rate <= 1:
        raise ConfigError(f"rate = {rate!r}: a rate is in [0, 1]")
    d = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / d
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)

"""Automatic layouts: alternate pixel unshuffle and surjective couplings from any (C, H, W) to any
smaller output, a vector (k,) or a feature map (C', H', W').

Spatial ratios H/H' and W/W' are split into prime factors grouped into stages of at most
``factor`` (non-square stages when H and W differ); after each unshuffle a coupling divides the
channels by ``reduction`` (never below what the output still needs); a final chain of couplings
reaches the output channels, dividing by at most ``reduction`` each time.
Couplings wider than ``dense_max`` channels use Householder instead of a dense Cayley solve (O(C^3)).
"""

from __future__ import annotations

import math

from spnn.errors import LayoutError

__all__ = ["plan_layout", "spatial_stages"]


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def _group(ratio: int, factor: int) -> list[int]:
    stages: list[int] = []
    for p in _primes(ratio):
        if stages and stages[-1] * p <= factor:
            stages[-1] *= p
        else:
            stages.append(p)
    return sorted(stages)


def spatial_stages(ratio_h: int, ratio_w: int, factor: int) -> list[tuple[int, int]]:
    """Unshuffle factors (fh, fw) whose products are ratio_h and ratio_w, largest stages last.

    >>> spatial_stages(32, 32, 2)
    [(2, 2), (2, 2), (2, 2), (2, 2), (2, 2)]
    >>> spatial_stages(48, 80, 4)
    [(3, 4), (4, 4), (4, 5)]
    """
    hs, ws = _group(ratio_h, factor), _group(ratio_w, factor)
    n = max(len(hs), len(ws))
    hs = [1] * (n - len(hs)) + hs
    ws = [1] * (n - len(ws)) + ws
    return list(zip(hs, ws))


def _chain(c: int, target: int, reduction: float) -> list[int]:
    """Strictly decreasing channel counts from c (excluded) to target (included)."""
    if c == target:
        return []
    n = max(1, math.ceil(math.log(c / target) / math.log(reduction) - 1e-9))
    out: list[int] = []
    for j in range(1, n + 1):
        cj = max(target, round(c * (target / c) ** (j / n)))
        if cj < (out[-1] if out else c):
            out.append(cj)
    if out[-1] != target:
        out.append(target)
    return out


def plan_layout(
    input_shape: tuple[int, int, int],
    output_shape: tuple[int, ...],
    *,
    factor: int = 2,
    reduction: float = 2.0,
    mixing: str = "cayley",
    dense_max: int = 1024,
    reflections: int = 8,
    **coupling_options,
) -> list[dict]:
    """Plan a list of block configs (see `spnn.blocks.block_from_config`).

    >>> " -> ".join(b["type"] for b in plan_layout((3, 8, 8), (5,), factor=4, reduction=8))
    'unshuffle -> coupling -> unshuffle -> coupling'
    """
    if len(input_shape) != 3:
        raise LayoutError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    c, h, w = (int(v) for v in input_shape)
    if len(output_shape) == 1:
        k, ho, wo = int(output_shape[0]), 1, 1
    elif len(output_shape) == 3:
        k, ho, wo = (int(v) for v in output_shape)
    else:
        raise LayoutError(
            f"output_shape must be a vector (k,) or a feature map (C, H, W), got {tuple(output_shape)}"
        )
    if min(c, h, w, k, ho, wo) < 1:
        raise LayoutError(f"shapes must be positive, got {input_shape} -> {output_shape}")
    if k * ho * wo >= c * h * w:
        raise LayoutError(
            f"output {tuple(output_shape)} has {k * ho * wo} elements, not fewer than the input's "
            f"{c * h * w}: a surjective network must lose information; choose a smaller output"
        )
    if h % ho or w % wo:
        raise LayoutError(
            f"output spatial size {ho}x{wo} must divide the input's {h}x{w} "
            f"(pixel unshuffle reduces by integer factors); e.g. resize the input to "
            f"{ho * max(1, round(h / ho))}x{wo * max(1, round(w / wo))} or pick an output size that divides"
        )
    if factor < 2 or reduction <= 1:
        raise LayoutError("factor must be >= 2 and reduction > 1")

    def coupling(shape, out_c):
        kind = mixing
        opts = {}
        if kind == "householder" or (kind == "cayley" and shape[0] > dense_max):
            kind, opts = "householder", {"reflections": reflections}
        return {"type": "coupling", "in_shape": list(shape), "out_channels": out_c,
                "mixing": kind, "mixing_options": opts, **coupling_options}

    layout: list[dict] = []
    stages = spatial_stages(h // ho, w // wo, factor)
    remaining = [math.prod(fh * fw for fh, fw in stages[i + 1:]) for i in range(len(stages))]
    for i, (fh, fw) in enumerate(stages):
        layout.append({"type": "unshuffle", "in_shape": [c, h, w], "factor": [fh, fw]})
        c, h, w = c * fh * fw, h // fh, w // fw
        if i < len(stages) - 1:
            c_next = max(math.ceil(c / reduction), math.ceil(k / remaining[i]))
            if c_next < c:
                layout.append(coupling((c, h, w), c_next))
                c = c_next
    if c < k:
        raise LayoutError(
            f"cannot reach {k} output channels at {ho}x{wo} from {tuple(input_shape)}"
        )  # pragma: no cover - excluded by the element count check
    for c_next in _chain(c, k, reduction):
        layout.append(coupling((c, h, w), c_next))
        c = c_next
    return layout

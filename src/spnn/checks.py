"""Argument validation shared by blocks, networks and operators."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from spnn.errors import ConfigError, LayoutError, ShapeError

__all__ = ["check_fields", "check_shape", "check_finite", "check_dtype", "check_shape_spec", "check_lam", "check_mask",
           "check_images", "check_batch", "is_level", "memory_limit", "estimate_memory", "check_memory"]


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
    """Raise `ShapeError` if ``t`` holds NaN or infinite values. Skipped while a CUDA graph is recorded (the check
    reads a value back to the host, which a graph cannot); `spnn.graphs` runs it before each replay instead."""
    if t.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    if not torch.isfinite(t).all():
        n_bad = int((~torch.isfinite(t)).sum())
        raise ShapeError(
            f"{what}: contains {n_bad} NaN/inf values; clean the input (e.g. torch.nan_to_num) "
            "or find where they were produced"
        )


def check_dtype(t: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """Raise `ShapeError` unless ``t`` has the floating dtype ``dtype`` (of the network's weights)."""
    if t.dtype == dtype:
        return
    if not t.is_floating_point():
        raise ShapeError(f"{what}: got {t.dtype} values; images and logits must be floating point: "
                         f"convert with x.float() (uint8 images: x.float() / 127.5 - 1)")
    fix = "x.float()" if dtype == torch.float32 else f"x.to({dtype})"
    raise ShapeError(f"{what}: got {t.dtype} but the network's weights are {dtype}; call {fix} "
                     f"(or convert the network, e.g. net.to({t.dtype}))")


def check_shape_spec(shape: Sequence, what: str) -> tuple[int, ...]:
    """A shape given by the user: positive integers only (3.5 or -1 are refused, not truncated)."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise LayoutError(f"{what} must be a sequence of positive integers, got {shape!r}") from None
    ok = all(isinstance(d, (int, torch.SymInt)) and not isinstance(d, bool) and d > 0 for d in dims)
    if not dims or not ok:
        raise LayoutError(f"{what} must be positive integers, e.g. (3, 32, 32), got {tuple(shape)!r}")
    return tuple(int(d) for d in dims)


def check_lam(lam, what: str = "lam") -> None:
    """A back-projection step: a number or per-sample tensor in [0, 1] (1 meets the constraint exactly)."""
    values = lam if isinstance(lam, torch.Tensor) else torch.tensor(float(lam)) if _is_number(lam) else None
    if values is None:
        raise ConfigError(f"{what} must be a number or a per-sample tensor in [0, 1], got {type(lam).__name__}")
    if not (torch.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
        raise ConfigError(f"{what} must lie in [0, 1] (1: the constraint is met exactly; smaller: a partial step), "
                          f"got {lam if not isinstance(lam, torch.Tensor) else values.flatten()[:4].tolist()}")


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def is_level(v) -> bool:
    """A bound level (an edit's logit): a finite positive number, not a bool.

    >>> is_level(3.5), is_level(0), is_level(True), is_level(float("inf"))
    (True, False, False, False)
    """
    return not isinstance(v, bool) and _is_number(v) and math.isfinite(float(v)) and float(v) > 0


def check_mask(mask: torch.Tensor | None, what: str = "mask") -> torch.Tensor | None:
    """A boolean selection (bool dtype, or only 0 and 1 values); 0.5 is refused instead of read as True."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ConfigError(f"{what} must be boolean (True = enforce this coordinate); got values other than "
                              "0 and 1: pass mask > 0.5 or a bool tensor")
        mask = mask.bool()
    return mask


def check_images(x: torch.Tensor, what: str = "images", limit: float = 1.5) -> None:
    """Images for the tasks: a floating batch (B, C, H, W), finite, in the prior's range [-1, 1] (up to
    ``limit``: values like 0..255 are refused with the conversion to use)."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"{what}: got {x.dtype}; images must be floats in [-1, 1]: x.float() / 127.5 - 1")
    if x.dim() != 4:
        raise ShapeError(f"{what}: expected a batch (B, C, H, W), got shape {tuple(x.shape)}"
                         + (" (add a batch dimension: x.unsqueeze(0))" if x.dim() == 3 else ""))
    if len(x) == 0:
        raise ShapeError(f"{what}: the batch is empty; pass at least one image")
    check_finite(x, what)
    m = float(x.abs().max())
    if m > limit:
        hint = " (they look like 0..255 values: x / 127.5 - 1)" if m > 2 else ""
        raise ShapeError(f"{what}: values reach {m:.3g}; images must be in [-1, 1]{hint}")


def check_batch(a: torch.Tensor, b: torch.Tensor, what_a: str, what_b: str) -> None:
    """Two batches that go together must have the same length (1 broadcasts)."""
    if len(a) != len(b) and len(b) != 1:
        raise ShapeError(f"{what_a} has {len(a)} samples but {what_b} has {len(b)}; give one {what_b} per sample "
                         "(or a single one for all)")


def memory_limit() -> int:
    """Bytes a single piece of work may take: ``SPNN_MAX_MEMORY_GB`` if set, else 3/4 of physical memory."""
    import os

    env = os.environ.get("SPNN_MAX_MEMORY_GB")
    if env:
        try:
            return int(float(env) * 2**30)
        except ValueError:
            raise ConfigError(f"SPNN_MAX_MEMORY_GB={env!r} is not a number of GiB") from None
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 3 // 4)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 2**30


def estimate_memory(net: torch.nn.Module, input_shape: Sequence[int], batch: int, bytes_per_value: int = 4) -> int:
    """Rough bytes to run ``net`` on a batch: weights, plus activations taken as 16 copies of the batch (the
    coupling nets' hidden features and the completion's latents). ``net`` may live on the ``meta`` device."""
    n_params = sum(p.numel() for p in net.parameters())
    n_input = int(torch.Size(tuple(input_shape)).numel())
    return (n_params + 16 * batch * n_input) * bytes_per_value


def check_memory(need: int, what: str, fix: str) -> None:
    """Raise `ResourceError` if ``need`` bytes exceed `memory_limit`."""
    from spnn.errors import ResourceError

    limit = memory_limit()
    if need > limit:
        raise ResourceError(f"{what} needs about {need / 2**30:.1f} GiB, over the limit of {limit / 2**30:.1f} GiB; "
                            f"{fix}, or raise the limit with SPNN_MAX_MEMORY_GB")


def check_fields(cls, d: dict, what: str) -> None:
    """Refuse keys of ``d`` that are not fields of the dataclass ``cls``, listing the known ones."""
    from dataclasses import fields

    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown {what} {sorted(unknown)}; known: {sorted(names)}")

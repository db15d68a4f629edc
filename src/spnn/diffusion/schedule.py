"""Timestep schedules for the sampler: evenly spaced DDIM steps and RePaint-style time travel."""

from __future__ import annotations

from spnn.errors import ConfigError

__all__ = ["ddim_timesteps", "time_travel"]


def ddim_timesteps(num_train: int, steps: int, t_start: int | None = None) -> list[int]:
    """Descending timesteps, e.g. 1000 train steps and 100 steps -> 990, 980, ..., 0.

    ``t_start`` (editing): only the timesteps <= t_start.

    >>> ddim_timesteps(1000, 4)
    [750, 500, 250, 0]
    """
    if not 1 <= steps <= num_train:
        raise ConfigError(f"steps must be in 1..{num_train}, got {steps}")
    stride = num_train // steps
    ts = [num_train - stride * (i + 1) for i in range(steps)]
    ts = [max(t, 0) for t in ts]
    if t_start is not None:
        ts = [t for t in ts if t <= t_start]
    return ts


def time_travel(timesteps: list[int], length: int, repeats: int, t_min: int = 0, t_max: int | None = None
                ) -> list[int]:
    """RePaint-style schedule: after every ``length`` denoising steps (while t in [t_min, t_max]) jump
    back ``length`` steps (re-noising) and denoise again, ``repeats`` extra times.

    The result is a list of timesteps visited in order; an increase means re-noise.

    >>> time_travel([3, 2, 1, 0], length=2, repeats=1)
    [3, 2, 1, 2, 3, 2, 1, 0]
    """
    if length < 1 or repeats < 0:
        raise ConfigError("time travel needs length >= 1 and repeats >= 0")
    out = [timesteps[0]]
    i = 0
    while i < len(timesteps) - 1:
        j = min(i + length, len(timesteps) - 1)
        seg = timesteps[i + 1:j + 1]
        out += seg
        t_here = timesteps[j]
        if j < len(timesteps) - 1 and t_min <= t_here and (t_max is None or t_here <= t_max):
            for _ in range(repeats):
                out += list(reversed(timesteps[i:j])) + seg  # re-noise up to timesteps[i], denoise again
        i = j
    return out

"""Sampler presets: our defaults (``"spnn"``) and the authors' sampling loop step for step (``"paper"``).

=====================  ==========================================  ==============================================
setting                ``"spnn"`` (ours, the default)              ``"paper"`` (their DDNM/NLBP loop, a901837)
=====================  ==========================================  ==============================================
timesteps              1000 - 1000/T (k + 1), k = 0..T-1            the same (900, 800, ..., 0 at T = 10)
noise                  DDIM eta 0.85: sigma = eta sqrt((1 - a')     sigma = sqrt(1 - a / a'), no eta; c2 =
                       / (1 - a)) sqrt(1 - a / a')                  sqrt(max(0, 1 - a' - sigma^2))
clipping               x0 clipped to [-1, 1] before and after       none
                       the projection (not the returned one)
NLBP step lam          0.5 for t >= 600, 1 below                    the same
skip rule              off                                          skip a sample's projection while mean
                                                                    |sigmoid(g(x0)) - sigmoid(y)| <= 0.11
last step              always projected (g(x) = y exactly)          skipped too when within the tolerance
NLBP update            x' = G^-1(g(x) + lam (y - g(x)), q(x) +      y_final = y_cur + lam (y_tar - y_proj),
                       lam (Z(y) - Z(g(x)))), Z cached per target   z_final = z_cur + lam (z_tar - z_proj) with
                                                                    y_tar, z_tar = G(g+(y)), y_proj, z_proj =
                                                                    G(g+(g(x))) recomputed every step
seeds (when not given) 0, 1, ..., n - 1 (one per sample)            1234 for every sample (shared x_T and noises)
=====================  ==========================================  ==============================================

Why ours differ (measured with the shipped avatar models, benchmarks/quality.py): the skip rule lowered the
evaluator's agreement of reconstruction from semantics (0.940 vs 0.956 on 200 test faces, 20 steps); clipping
keeps x_t in the prior's range when the SPNN's step leaves it; eta 0.85 scored best of the values tried;
per-sample seeds give different images for different inputs. The two updates are the same map up to
rounding (G(g+(y)) = (y, Z(y)) by the right-inverse property); theirs costs two more completions and pseudo-
inverses per step.
"""

from __future__ import annotations

from dataclasses import dataclass

from spnn.errors import ConfigError

__all__ = ["SamplerPreset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class SamplerPreset:
    """Settings of the sampling loop that a preset fixes (see the module table)."""

    name: str
    eta: float | None  # None: the authors' noise, sigma = sqrt(1 - a_t / a_next)
    clip: bool  # clip x0 to [-1, 1] before and after the projection
    skip_tol: float | None  # default skip rule of NLBP
    exact_at_end: bool  # project the last step even when the skip rule would skip it
    update: str  # "completion" (ours) or "paper" (their recomputed form)
    shared_seed: int | None  # seed of every sample when seeds are not given (None: 0..n-1)


PRESETS: dict[str, SamplerPreset] = {
    "spnn": SamplerPreset("spnn", eta=0.85, clip=True, skip_tol=None, exact_at_end=True, update="completion",
                          shared_seed=None),
    "paper": SamplerPreset("paper", eta=None, clip=False, skip_tol=0.11, exact_at_end=False, update="paper",
                           shared_seed=1234),
}


def get_preset(preset: str | SamplerPreset) -> SamplerPreset:
    """A preset by name ("spnn" or "paper"), or one given as is."""
    if isinstance(preset, SamplerPreset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown sampler preset {preset!r}; choose one of {sorted(PRESETS)}") from None

"""Building blocks of a surjective pseudo-invertible network.

Every block follows one contract (shapes are per sample, (C, H, W)):

- ``forward(x) -> (y, z)``: the block's output and its latent z (the discarded part), or None;
- ``inverse(y, z) -> x``: exact inverse of the completion x -> (y, z);
- ``conditioned(x) -> (y, z, c)`` and ``inverse(y, z, c)``: the same, with ``c`` what the block computed
  from z alone (coupling: log s(z), t(z)); an inverse with the *same* z can reuse it instead of recomputing;
- ``learned_latent(y) -> z``: the r-network guess of z (blocks with a latent);
- ``config() -> dict`` and ``block_from_config(dict)``: a JSON description that rebuilds the block.
"""

from __future__ import annotations

import torch
from torch import nn

from spnn.checks import check_shape
from spnn.errors import ConfigError
from spnn.mixing import exact_float32, make_mixing
from spnn.subnets import SubNet, SubNetPair, subnet_spec

__all__ = ["Block", "PixelUnshuffle", "SurjectiveCoupling", "block_from_config"]

Shape = tuple[int, int, int]


class Block(nn.Module):
    """Base class: ``in_shape``, ``out_shape`` and ``latent_shape`` (None without latent)."""

    in_shape: Shape
    out_shape: Shape
    latent_shape: Shape | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, z: torch.Tensor | None = None, conditioners=None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def conditioned(self, x: torch.Tensor):
        """(y, z, conditioners): ``forward`` plus what the inverse needs from z (None: nothing)."""
        return (*self.forward(x), None)

    def learned_latent(self, y: torch.Tensor) -> torch.Tensor | None:
        return None

    def config(self) -> dict:  # pragma: no cover
        raise NotImplementedError


class PixelUnshuffle(Block):
    """Space-to-depth by (rh, rw): (C, H, W) -> (C rh rw, H / rh, W / rw); no parameters, no latent.

    Channel order matches ``torch.nn.functional.pixel_unshuffle`` for square factors.

    >>> b = PixelUnshuffle((3, 4, 6), (2, 3))
    >>> b.out_shape
    (18, 2, 2)
    """

    def __init__(self, in_shape: Shape, factor: int | tuple[int, int]):
        super().__init__()
        rh, rw = (factor, factor) if isinstance(factor, int) else tuple(factor)
        c, h, w = in_shape
        if h % rh or w % rw:
            raise ConfigError(
                f"pixel unshuffle by {rh}x{rw} needs H divisible by {rh} and W by {rw}; "
                f"got {h}x{w}"
            )
        self.factor = (int(rh), int(rw))
        self.in_shape = (int(c), int(h), int(w))
        self.out_shape = (c * rh * rw, h // rh, w // rw)

    def forward(self, x):
        b, c, h, w = x.shape
        rh, rw = self.factor
        x = x.reshape(b, c, h // rh, rh, w // rw, rw).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(b, c * rh * rw, h // rh, w // rw), None

    def inverse(self, y, z=None, conditioners=None):
        b, c, h, w = y.shape
        rh, rw = self.factor
        y = y.reshape(b, c // (rh * rw), rh, rw, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(b, c // (rh * rw), h * rh, w * rw)

    def config(self):
        return {"type": "unshuffle", "in_shape": list(self.in_shape), "factor": list(self.factor)}

    def extra_repr(self):
        return f"{self.in_shape} -> {self.out_shape}"


class SurjectiveCoupling(Block):
    """Surjective coupling C_in -> C_out < C_in.

    h = W x; [x0 | x1] = h; y = x0 * s(x1) + t(x1); latent z = x1.
    Inverse: x = W^T [(y - t(z)) / s(z) | z]. Learned latent: z = r(y).
    s = exp(scale_bound tanh(.)), t = t_bound tanh(.), r = r_bound tanh(.).

    >>> blk = SurjectiveCoupling((8, 4, 4), 3, hidden=16)
    >>> y, z = blk(torch.randn(2, 8, 4, 4))
    >>> y.shape, z.shape
    (torch.Size([2, 3, 4, 4]), torch.Size([2, 5, 4, 4]))
    """

    def __init__(
        self,
        in_shape: Shape,
        out_channels: int,
        *,
        mixing: str = "cayley",
        mixing_options: dict | None = None,
        hidden: int = 64,
        subnet: str = "plain",
        depth: int = 2,
        s_spec: list | None = None,
        t_spec: list | None = None,
        r_spec: list | None = None,
        scale_bound: float = 2.0,
        t_bound: float = 1.0,
        r_bound: float = 1.0,
    ):
        super().__init__()
        c, h, w = (int(v) for v in in_shape)
        out_channels = int(out_channels)
        if not 0 < out_channels < c:
            raise ConfigError(
                f"a surjective coupling needs 0 < out_channels < in_channels; got {c} -> {out_channels}"
            )
        self.in_shape = (c, h, w)
        self.out_shape = (out_channels, h, w)
        self.latent_shape = (c - out_channels, h, w)
        nz = c - out_channels
        spatial = (h, w)
        self.mix = make_mixing(mixing, c, **(mixing_options or {}))
        self.s = SubNet(s_spec or subnet_spec(subnet, nz, out_channels, hidden, spatial, depth),
                        bound=scale_bound, exp_output=True)
        self.t = SubNet(t_spec or subnet_spec(subnet, nz, out_channels, hidden, spatial, depth),
                        bound=t_bound)
        self.r = SubNet(r_spec or subnet_spec(subnet, out_channels, nz, hidden, spatial, depth),
                        bound=r_bound)
        self._st = SubNetPair(self.s, self.t)

    def conditioners(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log s(z), t(z)): all the block computes from its latent. Without TF32 on CUDA: cuDNN picks algorithms
        by memory layout, and z is a strided slice in `conditioned` but a fresh tensor in `inverse`, so TF32's
        ~1e-3 rounding would differ between the two and break g(g+(y)) = y at that level."""
        with exact_float32(z):  # s and t in one pass of stacked weights (`SubNetPair`)
            a, b = self._st.bodies(z)
            return self.s.bounded(a), self.t.bounded(b)

    def conditioned(self, x):
        h = self.mix(x)
        k = self.out_shape[0]
        x0, x1 = h[:, :k], h[:, k:]
        log_s, t = self.conditioners(x1)
        return x0 * log_s.exp() + t, x1, (log_s, t)

    def forward(self, x):
        y, z, _ = self.conditioned(x)
        return y, z

    def inverse(self, y, z=None, conditioners=None):
        """``conditioners``: (log s(z), t(z)) from `conditioned` for this very z (saves the s and t passes)."""
        if z is None:
            raise ConfigError("SurjectiveCoupling.inverse needs the latent z; use learned_latent(y)")
        check_shape(z, self.latent_shape, "latent")
        log_s, t = conditioners if conditioners is not None else self.conditioners(z)
        x0 = (y - t) * torch.exp(-log_s)
        return self.mix.inverse(torch.cat([x0, z], dim=1))

    def learned_latent(self, y):
        with exact_float32(y):  # as the conditioners: g+(g(g+(y))) = g+(y) needs r to repeat bit for bit
            return self.r(y)

    def config(self):
        return {
            "type": "coupling",
            "in_shape": list(self.in_shape),
            "out_channels": self.out_shape[0],
            "mixing": self.mix.kind,
            "mixing_options": self.mix.options(),
            "s_spec": self.s.spec,
            "t_spec": self.t.spec,
            "r_spec": self.r.spec,
            "scale_bound": self.s.bound,
            "t_bound": self.t.bound,
            "r_bound": self.r.bound,
        }

    def extra_repr(self):
        return f"{self.in_shape} -> {self.out_shape}, latent {self.latent_shape}"


def block_from_config(cfg: dict) -> Block:
    """Rebuild a block from its ``config()``."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    in_shape = tuple(cfg.pop("in_shape"))
    if kind == "unshuffle":
        return PixelUnshuffle(in_shape, tuple(cfg["factor"]))
    if kind == "coupling":
        return SurjectiveCoupling(in_shape, cfg.pop("out_channels"), **cfg)
    raise ConfigError(f"unknown block type {kind!r} in network description")

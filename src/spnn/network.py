"""Surjective pseudo-invertible networks (SPNN): g(x), its completion G(x) = [g(x) | latents],
the exact inverse G^-1, and two pseudo-inverses g+ (learned through r, or natural closed form).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from spnn.blocks import Block, PixelUnshuffle, SurjectiveCoupling, block_from_config
from spnn.checks import check_dtype, check_finite, check_shape, check_shape_spec
from spnn.errors import CheckpointError, ConfigError, LayoutError, ShapeError
from spnn.io import check_header, load_tensors, read_metadata, save_tensors
from spnn.layout import plan_layout

__all__ = ["SPNN", "Completion", "Latents", "PINV_MODES"]

Latents = list[torch.Tensor]
PINV_MODES = ("learned", "natural")
FORMAT = "spnn.SPNN/1"


class Completion(tuple):
    """(y, latents) = G(x); ``conditioners``: per block, what it computed from its latent (see
    `SPNN.complete`), or None. Unpacks as the pair ``y, latents``."""

    conditioners: list | None

    def __new__(cls, y: torch.Tensor, latents: Latents, conditioners: list | None = None):
        obj = super().__new__(cls, (y, latents))
        obj.conditioners = conditioners
        return obj


class SPNN(nn.Module):
    """A chain of blocks g = b_k o ... o b_1 with bijective completion G(x) = [g(x) | z_1 .. z_m].

    - ``net(x)``: y = g(x);
    - ``net.complete(x)``: (y, latents) = G(x) (a `Completion`);
    - ``net.inverse(y, latents)``: x = G^-1(y, latents), exact;
    - ``net.pinv(y, mode="learned")``: latents from the r networks;
      ``net.pinv(y, mode="natural")``: G^-1([y | origin]), the x with g(x) = y whose latents are
      closest to the origin (0, or the latents of the zero image with ``origin="completion"``).

    >>> net = SPNN.build((3, 8, 8), (5,), hidden=8)
    >>> x = torch.randn(2, 3, 8, 8)
    >>> y, latents = net.complete(x)
    >>> bool(torch.allclose(net.inverse(y, latents), x, atol=1e-5))
    True
    >>> bool(torch.allclose(net(net.pinv(y)), y, atol=1e-5))
    True
    """

    def __init__(self, blocks: Sequence[Block], output_shape: Sequence[int] | None = None,
                 check_finite: bool = True, attribute_names: Sequence[str] | None = None):
        super().__init__()
        if not blocks:
            raise LayoutError("an SPNN needs at least one block")
        for a, b in zip(blocks[:-1], blocks[1:]):
            if tuple(a.out_shape) != tuple(b.in_shape):
                raise LayoutError(f"block output {a.out_shape} does not match next input {b.in_shape}")
        self.blocks = nn.ModuleList(blocks)
        self.input_shape = tuple(blocks[0].in_shape)
        map_shape = tuple(blocks[-1].out_shape)
        output_shape = tuple(int(v) for v in (output_shape or map_shape))
        is_vector = len(output_shape) == 1 and map_shape == (output_shape[0], 1, 1)
        if output_shape != map_shape and not is_vector:
            raise LayoutError(f"output_shape {output_shape} does not fit the last block's {map_shape}")
        self.output_shape = output_shape
        self._map_shape = map_shape
        self.check_finite = check_finite
        self.edit_calibration: dict | None = None  # editing numbers measured for this network (spnn.calibration)
        self.attribute_names = list(attribute_names) if attribute_names else None
        if self.attribute_names and len(self.attribute_names) != torch.Size(output_shape).numel():
            raise LayoutError(f"{len(self.attribute_names)} attribute names for {output_shape} outputs")
        n_in = torch.Size(self.input_shape).numel()
        if torch.Size(map_shape).numel() >= n_in:
            raise LayoutError(f"output {output_shape} is not smaller than input {self.input_shape}")

    # construction -------------------------------------------------------------------------
    @classmethod
    def build(cls, input_shape: Sequence[int], output_shape: Sequence[int], *,
              factor: int = 2, reduction: float = 2.0, mixing: str = "cayley", dense_max: int = 1024,
              reflections: int = 8, hidden: int = 64, subnet: str = "plain", depth: int = 2,
              scale_bound: float = 2.0, t_bound: float = 1.0, r_bound: float = 1.0,
              check_finite: bool = True, attribute_names: Sequence[str] | None = None) -> SPNN:
        """Plan a layout for any (C, H, W) -> (k,) or (C', H', W') (see `spnn.layout`)."""
        input_shape = check_shape_spec(input_shape, "input_shape")
        output_shape = check_shape_spec(output_shape, "output_shape")
        layout = plan_layout(tuple(input_shape), tuple(output_shape), factor=factor,
                             reduction=reduction, mixing=mixing, dense_max=dense_max,
                             reflections=reflections, hidden=hidden, subnet=subnet, depth=depth,
                             scale_bound=scale_bound, t_bound=t_bound, r_bound=r_bound)
        return cls.from_config({"layout": layout, "output_shape": list(output_shape),
                                "attribute_names": attribute_names}, check_finite=check_finite)

    @classmethod
    def from_layout(cls, input_shape: Sequence[int], layout: Sequence, output_shape=None,
                    **coupling_options) -> SPNN:
        """Explicit layout: entries ``("unshuffle", r)`` or ``("coupling", c_out)`` or
        ``("coupling", c_out, {options})``; shapes are inferred from ``input_shape``.

        >>> net = SPNN.from_layout((3, 16, 16), [("unshuffle", 4), ("coupling", 12),
        ...                                      ("unshuffle", 4), ("coupling", 7)], output_shape=(7,))
        >>> net.output_shape
        (7,)
        """
        shape = tuple(input_shape)
        blocks: list[Block] = []
        for entry in layout:
            kind, arg, *rest = entry
            if kind == "unshuffle":
                blocks.append(PixelUnshuffle(shape, arg))
            elif kind == "coupling":
                opts = {**coupling_options, **(rest[0] if rest else {})}
                blocks.append(SurjectiveCoupling(shape, arg, **opts))
            else:
                raise LayoutError(f"unknown layout entry {kind!r}; use 'unshuffle' or 'coupling'")
            shape = blocks[-1].out_shape
        return cls(blocks, output_shape)

    @classmethod
    def from_config(cls, config: dict, check_finite: bool = True) -> SPNN:
        """Rebuild from `config()`."""
        blocks = [block_from_config(b) for b in config["layout"]]
        return cls(blocks, config.get("output_shape"), check_finite=check_finite,
                   attribute_names=config.get("attribute_names"))

    def config(self) -> dict:
        """JSON description that rebuilds the architecture without code."""
        return {"format": FORMAT, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape),
                "attribute_names": self.attribute_names,
                "layout": [b.config() for b in self.blocks]}

    # shapes --------------------------------------------------------------------------------
    @property
    def latent_shapes(self) -> list[tuple[int, int, int]]:
        """Per-sample shapes of the latents, in block order."""
        return [b.latent_shape for b in self.blocks if b.latent_shape is not None]

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _check_x(self, x: torch.Tensor) -> None:
        check_shape(x, self.input_shape, "SPNN input")
        if not torch.is_autocast_enabled(x.device.type):
            check_dtype(x, self._dtype(), "SPNN input")
        if self.check_finite:
            check_finite(x, "SPNN input")

    def _y_to_map(self, y: torch.Tensor) -> torch.Tensor:
        check_shape(y, self.output_shape, "SPNN output y")
        if not torch.is_autocast_enabled(y.device.type):
            check_dtype(y, self._dtype(), "SPNN output y")
        if self.check_finite:
            check_finite(y, "SPNN output y")
        return y.reshape(y.shape[0], *self._map_shape)

    def _map_to_y(self, m: torch.Tensor) -> torch.Tensor:
        return m.reshape(m.shape[0], *self.output_shape)

    # the maps ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = g(x)."""
        self._check_x(x)
        for b in self.blocks:
            x, _ = b(x)
        return self._map_to_y(x)

    def complete(self, x: torch.Tensor, return_conditioners: bool = False) -> Completion:
        """G(x) = (g(x), latents). With ``return_conditioners`` the result also carries each block's s and t
        values (``.conditioners``): `inverse` reuses them for the same latents, e.g. in natural-mode NLBP,
        which keeps the latents of x, so that its inverse skips every s and t network."""
        self._check_x(x)
        latents: Latents = []
        conditioners = [] if return_conditioners else None
        for b in self.blocks:
            if return_conditioners:
                x, z, c = b.conditioned(x)
                conditioners.append(c)
            else:
                x, z = b(x)
            if z is not None:
                latents.append(z)
        return Completion(self._map_to_y(x), latents, conditioners)

    def inverse(self, y: torch.Tensor, latents: Sequence[torch.Tensor], conditioners: list | None = None
                ) -> torch.Tensor:
        """x = G^-1(y, latents). ``conditioners``: from `complete(x, return_conditioners=True)`, valid only
        together with the latents that came with them."""
        h = self._y_to_map(y)
        shapes = self.latent_shapes
        if len(latents) != len(shapes):
            raise ShapeError(f"expected {len(shapes)} latents (one per coupling block), got {len(latents)}")
        for i, (z, s) in enumerate(zip(latents, shapes)):
            check_shape(z, s, f"latent {i}")
            if z.shape[0] != y.shape[0]:
                raise ShapeError(f"latent {i} has batch {z.shape[0]} but y has batch {y.shape[0]}")
        if conditioners is not None and len(conditioners) != len(self.blocks):
            raise ShapeError(f"expected conditioners for {len(self.blocks)} blocks, got {len(conditioners)}")
        zs = list(latents)
        conds = list(conditioners) if conditioners is not None else [None] * len(self.blocks)
        for b in reversed(self.blocks):
            h = b.inverse(h, zs.pop() if b.latent_shape is not None else None, conds.pop())
        return h

    def origin_latents(self, batch: int, *, dtype=None, device=None) -> Latents:
        """Latents of the all-zero input, G(0), repeated over the batch."""
        p = next(self.parameters())
        zero = torch.zeros(1, *self.input_shape, dtype=dtype or p.dtype, device=device or p.device)
        _, latents = self.complete(zero)
        return [z.expand(batch, *z.shape[1:]) for z in latents]

    def pinv(self, y: torch.Tensor, mode: str = "learned", origin: str = "zero",
             return_latents: bool = False):
        """Pseudo-inverse g+(y); with ``return_latents`` also the latents used, i.e. G(g+(y)) = (y, latents).

        mode "learned": each block's latent is r(block output).
        mode "natural": latents at the origin: 0 (``origin="zero"``) or those of G(0)
        (``origin="completion"``); the closed form argmin_{g(x) = y} |G(x) - origin|.
        """
        if mode not in PINV_MODES:
            raise ConfigError(f"unknown pseudo-inverse mode {mode!r}; choose one of {PINV_MODES}")
        h = self._y_to_map(y)
        if mode == "natural":
            if origin == "zero":
                latents = [h.new_zeros(y.shape[0], *s) for s in self.latent_shapes]
            elif origin == "completion":
                latents = self.origin_latents(y.shape[0], dtype=h.dtype, device=h.device)
            else:
                raise ConfigError(f"unknown origin {origin!r}; choose 'zero' or 'completion'")
            x = self.inverse(y, latents)
            return (x, latents) if return_latents else x
        x, used = self._learned_inverse(h, image=True)
        return (x, used) if return_latents else x

    def learned_latents(self, y: torch.Tensor) -> Latents:
        """The latents of the learned pseudo-inverse, ``pinv(y, return_latents=True)[1]``, without inverting
        the blocks below the last latent (which only the image needs)."""
        return self._learned_inverse(self._y_to_map(y), image=False)[1]

    def inverse_along_walk(self, y: torch.Tensor, source: torch.Tensor,
                           latent_of: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """G^-1(y, [latent_of(i, Z_i) for each latent i]) with Z = `learned_latents`(source), in one walk down the
        blocks: both walks share each coupling's s, t and mixing calls (a batch of 2n rows instead of two of n),
        which halves those calls where small maps cost per call. ``latent_of`` is called from the last latent to
        the first. Learned-mode NLBP: x' = G^-1(y, q + B (Z(y) - Z(g(x)))) with source g(x).

        >>> net = SPNN.build((3, 8, 8), (3, 4, 4), hidden=4)
        >>> y, g = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
        >>> a = net.inverse_along_walk(y, g, lambda i, z: 2 * z)
        >>> b = net.inverse(y, [2 * z for z in net.learned_latents(g)])
        >>> bool(torch.allclose(a, b, atol=1e-5))
        True
        """
        n = y.shape[0]
        if source.shape != y.shape:
            raise ShapeError(f"the walk's source has shape {tuple(source.shape)} but y has {tuple(y.shape)}")
        h = torch.cat([self._y_to_map(source), self._y_to_map(y)])  # rows :n walk, rows n: invert
        remaining, walking = len(self.latent_shapes), True
        for b in reversed(self.blocks):
            if b.latent_shape is None:
                h = b.inverse(h)
                continue
            remaining -= 1
            walked = b.learned_latent(h[:n])
            z = latent_of(remaining, walked)
            if remaining:
                h = b.inverse(h, torch.cat([walked, z]))
            else:  # the walk needs nothing below the last latent
                h, walking = b.inverse(h[n:], z), False
        return h[n:] if walking else h

    def _learned_inverse(self, h: torch.Tensor, image: bool) -> tuple[torch.Tensor | None, Latents]:
        """Walk the blocks down from the output map h, each latent from r: (image or None, latents)."""
        used: Latents = []
        remaining = len(self.latent_shapes)
        for b in reversed(self.blocks):
            z = b.learned_latent(h)
            if z is not None:
                used.append(z)
                remaining -= 1
            if not image and not remaining:
                return None, used[::-1]
            h = b.inverse(h, z)
        return h, used[::-1]

    # persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, meta: dict | None = None) -> None:
        """Write weights (safetensors) with the JSON architecture in the file's metadata, atomically."""
        meta = {**(meta or {}), "spnn_config": self.config()}
        if self.edit_calibration:
            meta["edit_calibration"] = dict(self.edit_calibration)
        save_tensors(path, self.state_dict(), meta)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SPNN:
        """Rebuild a network saved by `save` (in the file's floating dtype).

        The architecture is first built on the ``meta`` device and compared with the file's header, so a
        crafted description or header is refused before any memory is allocated for it."""
        meta = read_metadata(path)
        config = meta.get("spnn_config")
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise CheckpointError(
                f"{path}: no spnn network description in the file's metadata; "
                "for the authors' checkpoints use `spnn convert` / spnn.convert.load_authors_spnn"
            )
        try:
            with torch.device("meta"):
                skeleton = cls.from_config(config)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise CheckpointError(f"{path}: invalid network description ({type(e).__name__}: {e}); "
                                  "the file is not an spnn network or was edited") from None
        check_header(path, skeleton.state_dict())
        tensors, _ = load_tensors(path, map_location)
        net = cls.from_config(config)
        dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
        if len(dtypes) == 1:
            net = net.to(dtypes.pop())
        load_state_checked(net, tensors, str(path))
        if isinstance(meta.get("edit_calibration"), dict):
            net.edit_calibration = meta["edit_calibration"]
        return net.to(map_location)


def load_state_checked(module: nn.Module, tensors: dict[str, torch.Tensor], source: str,
                       check_only: bool = False) -> None:
    """load_state_dict that names every missing, unexpected or mis-shaped key in its error (``check_only``: only
    compare, e.g. against a module built on the ``meta`` device)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def head(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {head(shapes)}")
        raise CheckpointError(f"{source}: weights do not match the architecture; " + "; ".join(parts))
    if not check_only:
        module.load_state_dict(tensors)

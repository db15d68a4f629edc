"""The small conv nets s, t and r of a coupling block, described by a JSON-friendly spec.

A spec is a list of layers: ``["conv", c_in, c_out, kernel, stride, padding]``,
``["convT", c_in, c_out, kernel, stride, padding]``, ``["relu"]`` or ``["shuffle", r]``.
Layer i becomes ``net.i`` of an ``nn.Sequential``; the last layer is zero-initialised so that a fresh
coupling block is the identity on its kept channels and its r network outputs 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spnn.caching import FrozenCache
from spnn.errors import ConfigError

__all__ = ["SubNet", "SubNetPair", "plain_spec", "unet_spec", "subnet_spec"]

Spec = list[list]


def plain_spec(c_in: int, c_out: int, hidden: int, spatial: tuple[int, int], depth: int = 2) -> Spec:
    """``depth`` hidden conv+ReLU layers then an output conv (3x3, or 1x1 on a 1x1 map)."""
    k = 1 if spatial == (1, 1) else 3
    p = k // 2
    spec: Spec = []
    c = c_in
    for _ in range(depth):
        spec += [["conv", c, hidden, k, 1, p], ["relu"]]
        c = hidden
    return spec + [["conv", c, c_out, k, 1, p]]


def unet_spec(c_in: int, c_out: int, hidden: int, spatial: tuple[int, int]) -> Spec:
    """Down-up conv net (stride-2 conv, transposed conv back), base width max(c_in, hidden).

    On a 1x1 map it is the MLP c_in -> b -> 2b -> b -> c_out. This is the authors' generic layout.
    """
    b = max(c_in, hidden)
    if spatial == (1, 1):
        return [["conv", c_in, b, 1, 1, 0], ["relu"], ["conv", b, 2 * b, 1, 1, 0], ["relu"],
                ["conv", 2 * b, b, 1, 1, 0], ["relu"], ["conv", b, c_out, 1, 1, 0]]
    if spatial[0] % 2 or spatial[1] % 2:
        raise ConfigError(f"unet subnets need an even spatial size, got {spatial}; use subnet='plain'")
    return [["conv", c_in, b, 3, 1, 1], ["relu"], ["conv", b, b, 3, 1, 1], ["relu"],
            ["conv", b, 2 * b, 3, 2, 1], ["relu"], ["conv", 2 * b, 2 * b, 3, 1, 1], ["relu"],
            ["convT", 2 * b, b, 4, 2, 1], ["relu"], ["conv", b, c_out, 3, 1, 1]]


def subnet_spec(style: str, c_in: int, c_out: int, hidden: int, spatial: tuple[int, int],
                depth: int = 2) -> Spec:
    """Spec of the named style: "plain" or "unet"."""
    if style == "plain":
        return plain_spec(c_in, c_out, hidden, spatial, depth)
    if style == "unet":
        return unet_spec(c_in, c_out, hidden, spatial)
    raise ConfigError(f"unknown subnet style {style!r}; choose 'plain' or 'unet'")


def _layer(entry: list) -> nn.Module:
    kind, *args = entry
    if kind == "conv":
        c_in, c_out, k, s, p = args
        return nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
    if kind == "convT":
        c_in, c_out, k, s, p = args
        return nn.ConvTranspose2d(c_in, c_out, k, stride=s, padding=p)
    if kind == "relu":
        return nn.ReLU()
    if kind == "shuffle":
        return nn.PixelShuffle(args[0])
    raise ConfigError(f"unknown subnet layer {kind!r} in spec")


class SubNet(nn.Module):
    """Conv net from a spec, followed by a bounded output.

    ``bound`` b and ``exp_output``: out = exp(b tanh(net)) (for s) or b tanh(net) (for t and r).

    >>> s = SubNet(plain_spec(2, 3, 8, (4, 4)), bound=2.0, exp_output=True)
    >>> s(torch.randn(1, 2, 4, 4)).unique().tolist()  # fresh: exp(0) = 1
    [1.0]
    """

    def __init__(self, spec: Spec, bound: float = 1.0, exp_output: bool = False):
        super().__init__()
        self.spec = [list(e) for e in spec]
        self.bound = float(bound)
        self.exp_output = bool(exp_output)
        self.net = nn.Sequential(*[_layer(e) for e in self.spec])
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        # on a 1x1 map, a stride-1 conv padded by k // 2 (odd k) sees only its kernel's centre
        self.pointwise = all(e[0] == "relu" or (e[0] == "conv" and e[3] % 2 == 1 and e[4] == 1 and e[5] == e[3] // 2)
                             for e in self.spec)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """net(x); on a 1x1 map a net of stride-1 "same" convolutions runs as the chain of matrix products it is
        (the kernels' centres; 4-5x faster than convolution calls on the CPU at batch 16). The route depends only
        on the input's shape, so the forward pass and the inverse, which must agree bit for bit, always take the
        same one."""
        if self.pointwise and x.shape[-2:] == (1, 1):
            h = x.flatten(1)
            for layer in self.net:
                if isinstance(layer, nn.ReLU):
                    h = torch.relu(h)
                else:
                    k = layer.kernel_size
                    h = F.linear(h, layer.weight[:, :, k[0] // 2, k[1] // 2], layer.bias)
            return h[:, :, None, None]
        return self.net(x)

    def bounded(self, h: torch.Tensor) -> torch.Tensor:
        """b tanh(h) for a body output h."""
        return self.bound * torch.tanh(h)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """b tanh(net(x)): the log-scale for s, the value for t and r."""
        return self.bounded(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.raw(x)
        return out.exp() if self.exp_output else out


class SubNetPair:
    """Two subnets of one input (a coupling's s and t) run as one net: the first layer's weights stacked, each later
    layer block-diagonal, so each layer is one call instead of two (small maps cost per call, not per product).

    The zeros of the block-diagonal weights add exactly, so on the CPU the pair gives the two bodies bit for bit;
    elsewhere to float rounding. Pairs only nets of equal specs made of stride-1 convolutions and ReLUs (`pairable`);
    others run one after the other. The stacked weights are kept while frozen (`FrozenCache`).

    >>> s, t = SubNet(plain_spec(2, 3, 8, (4, 4))), SubNet(plain_spec(2, 3, 8, (4, 4)))
    >>> for p in [*s.parameters(), *t.parameters()]:
    ...     _ = torch.nn.init.normal_(p)
    >>> x = torch.randn(5, 2, 4, 4)
    >>> a, b = SubNetPair(s, t).bodies(x)
    >>> bool(torch.allclose(a, s.body(x), atol=1e-5) and torch.allclose(b, t.body(x), atol=1e-5))
    True
    """

    def __init__(self, first: SubNet, second: SubNet):
        self.first, self.second = first, second
        self.pairable = first.spec == second.spec and all(
            e[0] == "relu" or (e[0] == "conv" and e[4] == 1) for e in first.spec)
        self._cache = FrozenCache()

    def bodies(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(first.body(x), second.body(x)); the route depends only on x's shape, like `SubNet.body`."""
        if not self.pairable:
            return self.first.body(x), self.second.body(x)
        pointwise = self.first.pointwise and x.shape[-2:] == (1, 1)
        params = [*self.first.parameters(), *self.second.parameters()]
        layers = self._cache.get(params, lambda: self._stacked(pointwise), pointwise)
        h = x.flatten(1) if pointwise else x
        for layer in layers:
            if layer is None:
                h = torch.relu(h)
            elif pointwise:
                h = F.linear(h, *layer)
            else:
                h = F.conv2d(h, *layer[:2], padding=layer[2])
        if pointwise:
            h = h[:, :, None, None]
        k = self.first.spec[-1][2]
        return h[:, :k], h[:, k:]

    def _stacked(self, pointwise: bool) -> list:
        """Per layer: None (ReLU) or (weight, bias[, padding]) of the pair."""
        layers, first = [], True
        for a, b in zip(self.first.net, self.second.net):
            if isinstance(a, nn.ReLU):
                layers.append(None)
                continue
            wa, wb = a.weight, b.weight
            if pointwise:
                k = a.kernel_size
                wa, wb = wa[:, :, k[0] // 2, k[1] // 2], wb[:, :, k[0] // 2, k[1] // 2]
            if not first:  # block-diagonal: [wa 0; 0 wb] over the two halves of the input
                spatial = (0, 0) * (wa.dim() - 2)
                wa, wb = F.pad(wa, (*spatial, 0, wb.shape[1])), F.pad(wb, (*spatial, wa.shape[1], 0))
            weight, bias = torch.cat([wa, wb]), torch.cat([a.bias, b.bias])
            layers.append((weight, bias) if pointwise else (weight, bias, a.padding))
            first = False
        return layers

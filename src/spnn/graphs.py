"""CUDA graphs for the calls a sampler repeats: one graph per input signature, replayed instead of launched.

Small networks on a GPU are launch-bound: a 32x32 UNet call or an SPNN completion is hundreds of kernels of a
few microseconds each, and the host spends longer starting them than the device spends running them. A CUDA
graph records the kernels of one call once and replays them with one launch. A graph is bound to the shapes,
dtypes and devices of its inputs and to the non-tensor arguments of the call: `GraphedCall` keeps one graph per
such signature (the batch sizes of a sampling run), copies new inputs into the graph's own input tensors, and
hands back copies of its outputs. Calls with CPU tensors, with gradients on, or with a tensor that requires grad
run as plain calls. The called function must be free of host synchronisation (``.item()``, ``bool(tensor)``);
value checks (`spnn.checks.check_finite`) are skipped while a graph is being recorded, so a caller that
wants them runs them before each replay (``check``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from spnn.network import Completion

__all__ = ["GraphedCall", "GraphedOperator", "check_graphs", "resolve_graphs", "GRAPHS"]

GRAPHS = ("auto", "on", "off")


def check_graphs(graphs: str | bool) -> str:
    """The setting as one of `GRAPHS` (True / False as "on" / "off"); a one-line error for anything else."""
    from spnn.errors import ConfigError

    if isinstance(graphs, bool):
        return "on" if graphs else "off"
    if not isinstance(graphs, str) or graphs not in GRAPHS:
        raise ConfigError(f"unknown graphs setting {graphs!r}; choose one of {GRAPHS}")
    return graphs


def resolve_graphs(graphs: str | bool, device: torch.device | str) -> bool:
    """Whether a sampling run replays CUDA graphs: ``"auto"`` on CUDA devices, ``"on"`` / True on CUDA (CPU and
    other devices have none and run plain calls), ``"off"`` / False never.

    >>> resolve_graphs("auto", "cpu"), resolve_graphs("off", "cuda")
    (False, False)
    """
    return check_graphs(graphs) != "off" and torch.device(device).type == "cuda"


def _flatten(obj: Any, leaves: list[torch.Tensor]) -> Any:
    """A hashable description of ``obj`` with its tensors appended to ``leaves`` (tensors, lists, tuples,
    `Completion`, None and hashable constants)."""
    if isinstance(obj, torch.Tensor):
        leaves.append(obj)
        return ("tensor", obj.shape, obj.dtype, obj.device)
    if isinstance(obj, Completion):
        return ("completion", _flatten(tuple(obj), leaves), _flatten(obj.conditioners, leaves))
    if isinstance(obj, (list, tuple)):  # subclasses come back as plain lists and tuples
        return ("list" if isinstance(obj, list) else "tuple", tuple(_flatten(o, leaves) for o in obj))
    hash(obj)  # a constant is part of the graph's key
    return ("constant", obj)


def _unflatten(spec: Any, leaves) -> Any:
    kind = spec[0]
    if kind == "tensor":
        return next(leaves)
    if kind == "completion":
        y, latents = _unflatten(spec[1], leaves)
        return Completion(y, latents, _unflatten(spec[2], leaves))
    if kind in ("list", "tuple"):
        items = [_unflatten(s, leaves) for s in spec[1]]
        return items if kind == "list" else tuple(items)
    return spec[1]


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    out_spec: Any


class GraphedCall:
    """``fn(*args)`` replayed from a CUDA graph recorded for the arguments' signature (one per signature).

    ``check(*args)``: run on the arguments before each replay (value checks the graph cannot make).
    ``warmup``: plain calls on a side stream before recording (cuDNN and cuBLAS pick and initialise their
    kernels; caches filled). Outputs are copies, so they stay valid after the next replay. A signature whose
    recording fails (a call that synchronises with the host, an operation CUDA cannot capture) runs as plain calls
    from then on, with one warning: graphs are a speed-up, never a reason for a run to stop.

    >>> call = GraphedCall(lambda x: 2 * x)
    >>> call(torch.ones(2)).tolist()  # a CPU tensor: a plain call
    [2.0, 2.0]
    """

    def __init__(self, fn: Callable, check: Callable | None = None, warmup: int = 2):
        self.fn, self.check, self.warmup = fn, check, warmup
        self.graphs: dict[Any, _Graph] = {}
        self.failed: dict[Any, str] = {}  # signatures whose recording failed, with the reason

    @staticmethod
    def graphable(leaves: list[torch.Tensor]) -> bool:
        """Whether a call with these tensors can replay a graph: all on CUDA, no gradients wanted."""
        return (bool(leaves) and all(t.is_cuda for t in leaves) and not torch.is_grad_enabled()
                and not any(t.requires_grad for t in leaves))

    def __call__(self, *args):
        leaves: list[torch.Tensor] = []
        spec = _flatten(args, leaves)
        if not self.graphable(leaves) or spec in self.failed:
            return self.fn(*args)
        if self.check is not None:
            self.check(*args)
        entry = self.graphs.get(spec)
        if entry is None:
            inputs = self._warm_up(spec, leaves)  # plain calls: an error of the call itself surfaces here, as is
            try:
                entry = self.graphs[spec] = self._record(spec, inputs)
            except RuntimeError as e:  # CUDA cannot capture this call: it runs plainly from now on
                import warnings

                self.failed[spec] = str(e).splitlines()[0] if str(e) else type(e).__name__
                warnings.warn(f"a CUDA graph could not be recorded ({self.failed[spec]}); these calls run without "
                              "graphs (graphs='off' skips the attempt)", RuntimeWarning, stacklevel=2)
                return self.fn(*args)
        return self._replay(entry, leaves)

    def _replay(self, entry: _Graph, leaves: list[torch.Tensor]):
        with torch.cuda.device(leaves[0].device):  # the device the graph lives on, whichever is current
            for static, t in zip(entry.inputs, leaves):
                static.copy_(t)
            entry.graph.replay()
            return _unflatten(entry.out_spec, iter([t.clone() for t in entry.outputs]))

    def _warm_up(self, spec: Any, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
        """The graph's own input tensors, after ``warmup`` plain calls on them on a side stream."""
        inputs = [t.detach().clone() for t in leaves]
        args = _unflatten(spec, iter(inputs))
        with torch.cuda.device(inputs[0].device):
            side = torch.cuda.Stream(device=inputs[0].device)
            side.wait_stream(torch.cuda.current_stream(inputs[0].device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.fn(*args)
            torch.cuda.current_stream(inputs[0].device).wait_stream(side)
        return inputs

    def _record(self, spec: Any, inputs: list[torch.Tensor]) -> _Graph:
        args = _unflatten(spec, iter(inputs))
        with torch.cuda.device(inputs[0].device):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self.fn(*args)
        outputs: list[torch.Tensor] = []
        out_spec = _flatten(out, outputs)
        return _Graph(graph, inputs, outputs, out_spec)


class GraphedOperator:
    """An operator whose ``complete``, ``back_project`` and ``A`` replay CUDA graphs (`GraphedCall`); every other
    attribute is the operator's own. ``lam`` is passed to the graph as a per-sample tensor, so one graph serves
    every step size, and learned-mode target latents Z(y) are computed (once, cached) outside it. The SPNN's
    input checks (finite values) run before each replay where the SPNN makes them."""

    def __init__(self, op):
        self.op = op
        net = getattr(op, "net", None)
        checked = net is not None and getattr(net, "check_finite", False)
        self._check = self._finite if checked else None
        self.A = GraphedCall(op.A, self._check)
        self._back_project = GraphedCall(self._plain_back_project)
        if hasattr(op, "complete"):
            self.complete = GraphedCall(op.complete, self._check)

    @staticmethod
    def _finite(x: torch.Tensor, *rest) -> None:
        from spnn.checks import check_finite

        check_finite(x, "SPNN input")

    def __getattr__(self, name: str):
        return getattr(self.op, name)

    def _plain_back_project(self, x, y, lam, target_latents, completion, form):
        if target_latents is None and completion is None and form == "completion":
            return self.op.back_project(x, y, lam)
        kwargs = {"completion": completion, "form": form}
        if target_latents is not None:
            kwargs["target_latents"] = target_latents
        return self.op.back_project(x, y, lam, **kwargs)

    def back_project(self, x, y, lam=1.0, completion=None, form: str = "completion"):
        if self._check is not None and completion is None:  # with a completion, `complete` checked x already
            self._finite(x)
        if not isinstance(lam, torch.Tensor):
            lam = x.new_full((len(x),), float(lam))  # a fill on the device, no host-to-device copy
        elif lam.dim() == 0:
            lam = lam.to(x).expand(len(x))
        target = None
        if getattr(self.op, "mode", None) == "learned" and form == "completion" and hasattr(self.op, "target_latents"):
            target = self.op.target_latents(y)
        return self._back_project(x, y, lam, target, completion, form)

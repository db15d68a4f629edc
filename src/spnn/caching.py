"""Values derived from parameters (a mixing matrix, stacked subnet weights), kept while the weights are frozen.

Sampling calls an SPNN hundreds of times with the same weights; what is built from them alone is built once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["FrozenCache"]


class FrozenCache:
    """``get(params, build)``: ``build()``, recomputed while gradients reach the parameters, else kept until a
    parameter changes (in place, by an optimiser or a load, or moved) or inference mode is switched (a value built
    under `torch.inference_mode` cannot enter a computation that autograd records).

    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> cache = FrozenCache()
    >>> with torch.no_grad():
    ...     a = cache.get([w], lambda: w * 2)
    ...     b = cache.get([w], lambda: w * 3)  # unchanged weights: the kept value
    >>> b.tolist()
    [2.0, 2.0]
    >>> with torch.no_grad():
    ...     _ = w.add_(1)
    ...     cache.get([w], lambda: w * 2).tolist()  # changed in place: rebuilt
    [4.0, 4.0]
    """

    def __init__(self, differentiable: bool = True):
        """``differentiable=False``: the value never carries gradients to the parameters (a copy for inference), so
        it is kept, built without gradients, also while gradients are on."""
        self.differentiable = differentiable
        self._key: tuple | None = None
        self._value = None

    def get(self, params: Sequence[torch.Tensor], build: Callable[[], object], *extra) -> object:
        """``build()``, or the value kept for the same parameters and ``extra`` key parts."""
        if self.differentiable and torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return build()
        key = (torch.is_inference_mode_enabled(), *extra,
               *((p._version, p.data_ptr(), p.dtype, p.device) for p in params))
        if self._key != key:
            with torch.no_grad():
                self._value = build()
            self._key = key
        return self._value

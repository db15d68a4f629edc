"""Base test every block and network configuration inherits (nflows-style).

Subclasses set ``make()`` returning a module with ``in_shape``/``input_shape`` and the block or
network contract; they get exact-inversion, batch-independence and gradient checks for free.
"""

from __future__ import annotations

import torch

from spnn.network import SPNN

F64_TOL = 1e-10
F32_TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm().clamp_min(1e-30))


def _in_shape(m):
    return m.input_shape if isinstance(m, SPNN) else m.in_shape


def _complete(m, x):
    if isinstance(m, SPNN):
        return m.complete(x)
    return m(x)


def _inverse(m, y, z):
    return m.inverse(y, z)


class TransformChecks:
    """Checks shared by blocks and networks."""

    def make(self) -> torch.nn.Module:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self, m, n=3, dtype=torch.float64):
        return (torch.rand(n, *_in_shape(m), dtype=dtype) * 2 - 1)

    def test_exact_inverse_float64(self):
        m = self.make().double()
        x = self.sample(m)
        y, z = _complete(m, x)
        assert rel(_inverse(m, y, z), x) <= F64_TOL

    def test_exact_inverse_float32(self):
        m = self.make()
        x = self.sample(m, dtype=torch.float32)
        y, z = _complete(m, x)
        assert rel(_inverse(m, y, z), x) <= F32_TOL

    def test_completion_is_onto(self):
        """G(G^-1(y, z)) = (y, z) for arbitrary (y, z): the completion is a bijection."""
        m = self.make().double()
        y0, z0 = _complete(m, self.sample(m))
        y = torch.randn_like(y0)
        z = [torch.randn_like(t) for t in z0] if isinstance(z0, list) else (
            None if z0 is None else torch.randn_like(z0))
        y2, z2 = _complete(m, _inverse(m, y, z))
        assert rel(y2, y) <= F64_TOL
        if isinstance(z, list):
            assert all(rel(a, b) <= F64_TOL for a, b in zip(z2, z))
        elif z is not None:
            assert rel(z2, z) <= F64_TOL

    def test_conditioners_reused_for_the_same_latents(self):
        """Inverting a new y with the latents of x and the conditioners computed with them equals the plain
        inverse exactly (natural NLBP's fast path); forward and the conditioned forward agree exactly."""
        m = self.make().double()
        x = self.sample(m)
        if isinstance(m, SPNN):
            completion = m.complete(x, return_conditioners=True)
            (y, z), conds = completion, completion.conditioners
        else:
            y, z, conds = m.conditioned(x)
        y0, z0 = _complete(m, x)
        assert torch.equal(y, y0)
        y_new = y + torch.randn_like(y)
        assert torch.equal(m.inverse(y_new, z, conds), _inverse(m, y_new, z))

    def test_batch_independence(self):
        m = self.make().double()
        x = self.sample(m, n=4)
        y, _ = _complete(m, x)
        y1, _ = _complete(m, x[1:2])
        assert torch.allclose(y[1:2], y1, atol=1e-12)

    def test_gradients_reach_every_parameter(self):
        m = self.make().double()
        params = dict(m.named_parameters())
        if not params:
            return
        x = self.sample(m)
        y, z = _complete(m, x)
        loss = y.pow(2).sum()
        if isinstance(m, SPNN):
            loss = loss + m.pinv(y.detach() + 0.1, mode="learned").pow(2).sum()
        else:
            zl = m.learned_latent(y.detach() + 0.1)
            loss = loss + m.inverse(y.detach() + 0.1, zl).pow(2).sum()
        loss.backward()
        dead = [k for k, p in params.items() if p.grad is None or p.grad.abs().max() == 0]
        assert not dead, f"no gradient reaches {dead}"

import math

import pytest
import torch
from transform_checks import rel

from spnn import SPNN
from spnn.backproject import nlbp
from spnn.errors import ConfigError
from spnn.operators import (
    AveragePool,
    Chain,
    Colorization,
    Composed,
    FeedbackEmulator,
    Identity,
    Inpainting,
    MatrixOperator,
    SPNNOperator,
    edit_bounds,
    edit_target,
)
from spnn.testing import perturb_

MODES = ["learned", "natural"]


def _net(dtype=torch.float64, **kw):
    return perturb_(SPNN.build((3, 8, 8), (5,), hidden=8, **kw), 0.1).to(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_lam_one_enforces_constraint(mode, dtype, tol):
    net = _net(dtype)
    x = torch.rand(4, 3, 8, 8, dtype=dtype) * 2 - 1
    y = torch.randn(4, 5, dtype=dtype)
    assert rel(net(nlbp(net, x, y, mode=mode)), y) <= tol


def test_natural_mode_keeps_latents():
    net = _net()
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    xp = nlbp(net, x, torch.randn(3, 5, dtype=torch.float64), lam=0.7, mode="natural")
    _, q = net.complete(x)
    _, qp = net.complete(xp)
    assert all(rel(a, b) < 1e-10 for a, b in zip(qp, q))


def test_learned_mode_moves_latents_by_lam_times_difference():
    net = _net()
    op = SPNNOperator(net, mode="learned")
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    lam = 0.3
    xp = nlbp(op, x, y, lam=lam)
    gx, q = net.complete(x)
    _, qp = net.complete(xp)
    zy, zg = op.pinv_latents(y), op.pinv_latents(gx)
    for a, b, c, d in zip(qp, q, zy, zg):
        assert rel(a, b + lam * (c - d)) < 1e-10
    assert rel(net(xp), gx + lam * (y - gx)) < 1e-10


@pytest.mark.parametrize("latents_from", ["logits", "labels"])
def test_learned_back_projection_is_the_same_alone_and_in_a_batch(latents_from):
    """Batches of two or more take Z(g(x)) and the inverse in one walk, a single image two walks: the same map."""
    net = _attribute_net() if latents_from == "labels" else _net()
    op = SPNNOperator(net, mode="learned", latents_from=latents_from)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(3, 5, dtype=torch.float64)
    lam = torch.tensor([0.2, 0.7, 1.0], dtype=torch.float64)
    batch = op.back_project(x, y, lam)
    alone = op.back_project(x[1:2], y[1:2].clone(), lam[1:2])
    assert rel(batch[1:2], alone) < 1e-10


@pytest.mark.parametrize("form", ["completion", "paper"])
@pytest.mark.parametrize("step", [0.0, 0.4, 1.0])
def test_latent_step_scales_the_latents_move_and_keeps_the_constraint(step, form):
    net = _net()
    op = SPNNOperator(net, mode="learned", latent_step=step)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    xp = op.back_project(x, y, 1.0, form=form)
    gx, q = net.complete(x)
    _, qp = net.complete(xp)
    zy, zg = op.pinv_latents(y), op.pinv_latents(gx)
    for a, b, c, d in zip(qp, q, zy, zg):
        assert rel(a, b + step * (c - d)) < 1e-9
    assert rel(net(xp), y) < 1e-10
    if step == 0.0:  # the natural mode's move
        assert rel(xp, SPNNOperator(net, mode="natural").back_project(x, y, 1.0)) < 1e-10


@pytest.mark.parametrize("step", [-0.1, 1.5])
def test_latent_step_outside_unit_interval_is_refused(step):
    with pytest.raises(ConfigError, match=r"latent_step .* outside \[0, 1\]"):
        SPNNOperator(_net(), latent_step=step)


def test_latent_step_with_the_natural_mode_is_refused():
    with pytest.raises(ConfigError, match="natural mode keeps the latents"):
        SPNNOperator(_net(), mode="natural", latent_step=0.5)


def _attribute_net():
    from spnn.calibration import EditCalibration

    net = _net(attribute_names=[f"a{i}" for i in range(5)])
    net.edit_calibration = EditCalibration(logit=3.0, label_temperature=0.5).to_dict()
    return net


@pytest.mark.parametrize("lam,step", [(1.0, 1.0), (0.3, 1.0), (1.0, 0.5)])
def test_labels_latents_move_by_the_labels_difference_and_keep_the_constraint(lam, step):
    net = _attribute_net()
    op = SPNNOperator(net, mode="learned", latents_from="labels", latent_step=step)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64) * 2 - 1
    y = 4 * torch.randn(3, 5, dtype=torch.float64)
    xp = op.back_project(x, y, lam)
    gx, q = net.complete(x)
    _, qp = net.complete(xp)
    level = lambda v: 3.0 * torch.tanh(v / 0.5)  # noqa: E731 - l(v) = c tanh(v / tau)
    assert rel(op.labels_of(y), level(y)) < 1e-12
    zy, zg = net.learned_latents(level(y)), net.learned_latents(level(gx))
    for a, b, c, d in zip(qp, q, zy, zg):
        assert rel(a, b + lam * step * (c - d)) < 1e-9
    assert rel(net(xp), gx + lam * (y - gx)) < 1e-10


def test_labels_latents_keep_the_latents_of_a_sample_with_the_target_labels():
    # tau -> 0: l(v) = c sign(v), so a target with the signs of g(x) moves the logits and keeps the latents
    net = _attribute_net()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1
    gx, q = net.complete(x)
    y = 1.7 * gx
    xp = SPNNOperator(net, latents_from="labels", label_temperature=1e-9).back_project(x, y)
    _, qp = net.complete(xp)
    assert all(rel(a, b) < 1e-9 for a, b in zip(qp, q))
    assert rel(net(xp), y) < 1e-10
    _, q_logits = net.complete(SPNNOperator(net).back_project(x, y))  # the paper's move does change them
    assert max(rel(a, b) for a, b in zip(q_logits, q)) > 1e-3


@pytest.mark.parametrize("kw,match", [
    ({"latents_from": "bogus"}, "unknown latents_from 'bogus'"),
    ({"latents_from": "labels", "mode": "natural"}, "natural mode keeps the latents"),
    ({"latents_from": "labels", "label_temperature": 0.0}, "label_temperature must be a positive number"),
])
def test_labels_latents_bad_settings_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        SPNNOperator(_attribute_net(), **kw)


def test_labels_latents_need_attribute_logits_and_the_completion_form():
    with pytest.raises(ConfigError, match="no attribute names"):
        SPNNOperator(_net(), latents_from="labels")
    op = SPNNOperator(_attribute_net(), latents_from="labels")
    x, y = torch.rand(1, 3, 8, 8, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    with pytest.raises(ConfigError, match="form='completion' with latents_from='labels'"):
        op.back_project(x, y, form="paper")
    from spnn.diffusion.guidance import BackProjection

    with pytest.raises(ConfigError, match="paper's update form"):
        BackProjection(op, y, form="paper")


@pytest.mark.parametrize("mode", MODES)
def test_fresh_network_reduces_to_linear_back_projection(mode):
    net = SPNN.build((2, 4, 4), (6,), hidden=4).double()
    n = 32
    a = net(torch.eye(n, dtype=torch.float64).reshape(n, 2, 4, 4)).T
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    y = torch.randn(3, 6, dtype=torch.float64)
    lam = 0.4
    expected = x.reshape(3, -1) + lam * (y - x.reshape(3, -1) @ a.T) @ a
    assert torch.allclose(nlbp(net, x, y, lam=lam, mode=mode).reshape(3, -1), expected, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_idempotent_and_lam_zero(mode):
    net = _net()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    once = nlbp(net, x, y, mode=mode)
    assert rel(nlbp(net, once, y, mode=mode), once) < 1e-10
    assert rel(nlbp(net, x, y, lam=0.0, mode=mode), x) < 1e-12


def test_per_sample_lam():
    net = _net()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    both = nlbp(net, x, y, lam=torch.tensor([0.0, 1.0]))
    assert rel(both[0], x[0]) < 1e-12
    assert rel(net(both[1:]), y[1:]) < 1e-10


@pytest.mark.parametrize("mode", MODES)
def test_mask_enforces_only_selected_coordinates(mode):
    net = _net()
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(3, 5, dtype=torch.float64)
    mask = torch.tensor([True, False, True, False, False])
    out = net(nlbp(net, x, y, mask=mask, mode=mode))
    assert rel(out[:, mask], y[:, mask]) < 1e-10
    assert rel(out[:, ~mask], net(x)[:, ~mask]) < 1e-10


def test_target_completion_is_cached_per_target():
    net = _net()
    op = SPNNOperator(net)
    calls = []
    original = op.pinv_latents
    op.pinv_latents = lambda v: calls.append(v) or original(v)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    for _ in range(3):
        x = nlbp(op, x, y, lam=0.5)
    assert sum(c is y for c in calls) == 1  # target latents computed once, g(x) latents each call
    y.add_(1.0)  # modified in place: cache invalid
    nlbp(op, x, y)
    assert sum(c is y for c in calls) == 2


def test_no_graph_by_default_differentiable_on_request():
    net = _net()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, dtype=torch.float64)
    assert not nlbp(net, x, y).requires_grad
    out = nlbp(net, x, y, lam=0.5, grad=True)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


class _Phi(torch.nn.Module):
    """A pixel-wise bijection phi(x) = x + 0.3 tanh(x) (strictly increasing)."""

    def forward(self, x):
        return x + 0.3 * torch.tanh(x)

    def inverse(self, v):
        x = v.clone()
        for _ in range(60):  # Newton
            x = x - (x + 0.3 * torch.tanh(x) - v) / (1 + 0.3 * (1 - torch.tanh(x) ** 2))
        return x


def test_coordinate_consistency():
    """g = A o phi with A linear with orthonormal rows: natural g+(y) = phi^-1(A^T y)."""
    lin = SPNN.build((2, 4, 4), (6,), hidden=4, mixing="householder").double()
    a = lin(torch.eye(32, dtype=torch.float64).reshape(32, 2, 4, 4)).T
    phi = _Phi()
    op = Composed(SPNNOperator(lin, mode="natural"), phi)
    y = torch.randn(3, 6, dtype=torch.float64)
    expected = phi.inverse((y @ a).reshape(3, 2, 4, 4))
    assert rel(op.pinv(y), expected) < 1e-10
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    assert rel(op.A(nlbp(op, x, y)), y) < 1e-10


LINEAR = [
    lambda: AveragePool((3, 8, 8), 2),
    lambda: AveragePool((1, 6, 6), 3),
    lambda: Inpainting.box((3, 8, 8), 2, 2, 3, 4),
    lambda: Colorization((3, 4, 4)),
    lambda: Identity((3, 4, 4)),
    lambda: MatrixOperator(torch.randn(5, 12, dtype=torch.float64), (3, 2, 2)),
]


@pytest.mark.parametrize("make", LINEAR)
def test_linear_operator_identities_and_matrix_pinv(make):
    op = make().double()
    n = torch.Size(op.input_shape).numel()
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *op.input_shape)
    mat = op.A(eye).reshape(n, -1).T  # explicit matrix
    pinv_mat = op.pinv(torch.eye(mat.shape[0], dtype=torch.float64).reshape(-1, *op.output_shape))
    pinv_mat = pinv_mat.reshape(mat.shape[0], -1).T
    assert torch.allclose(pinv_mat, torch.linalg.pinv(mat), atol=1e-10)
    y = op.A(torch.randn(2, *op.input_shape, dtype=torch.float64))  # in the range of A
    assert torch.allclose(op.A(op.pinv(y)), y, atol=1e-10)
    assert torch.allclose(op.pinv(op.A(op.pinv(y))), op.pinv(y), atol=1e-10)
    adj = op.A_adjoint(torch.eye(mat.shape[0], dtype=torch.float64).reshape(-1, *op.output_shape))
    assert torch.allclose(adj.reshape(mat.shape[0], -1), mat, atol=1e-12)
    x = torch.randn(2, *op.input_shape, dtype=torch.float64)
    assert torch.allclose(op.A(nlbp(op, x, y)), y, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_spnn_on_linearly_degraded_image(mode):
    """Chain: an SPNN classifier applied to a 2x-downsampled image, back-projected exactly."""
    op = Chain(SPNNOperator(_net(), mode=mode), AveragePool((3, 16, 16), 2).double())
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64)
    assert op.A(x).shape == (2, 5)
    assert rel(op.A(nlbp(op, x, y)), y) < 1e-10
    assert rel(op.A(op.pinv(y)), y) < 1e-10


def test_edit_target_by_name():
    net = SPNN.build((3, 8, 8), (3,), hidden=4, attribute_names=["Smiling", "Eyeglasses", "Bald"])
    y = torch.zeros(2, 3)
    y_edit, mask = edit_target(SPNNOperator(net), y, {"Eyeglasses": 1, "Bald": 0})
    assert mask.tolist() == [False, True, True]
    assert y_edit[0].tolist() == [0.0, 4.0, -4.0]
    with pytest.raises(ValueError, match="unknown attribute 'Glasses'.*Eyeglasses"):
        edit_target(SPNNOperator(net), y, {"Glasses": 1})


def test_edit_bounds_by_name():
    net = SPNN.build((3, 8, 8), (3,), hidden=4, attribute_names=["Smiling", "Eyeglasses", "Bald"])
    lower, upper = edit_bounds(SPNNOperator(net), 2, {"Eyeglasses": 1, "Bald": 0}, logit=2.5)
    assert lower.shape == upper.shape == (2, 3)
    assert lower[1].tolist() == [-math.inf, 2.5, -math.inf] and upper[1].tolist() == [math.inf, math.inf, -2.5]
    with pytest.raises(ValueError, match="unknown attribute 'Glasses'.*Eyeglasses"):
        edit_bounds(SPNNOperator(net), 1, {"Glasses": 1})
    with pytest.raises(ValueError, match="no attribute names"):
        edit_bounds(AveragePool((3, 8, 8), 2), 1, {"Smiling": 1})


def test_natural_nlbp_reuses_conditioners_exactly():
    """Natural NLBP keeps the latents, so it may reuse the completion's s and t: same result, bit for bit, as
    the inverse recomputing them, and a conditioner list of the wrong length is refused."""
    from spnn.errors import ShapeError
    from spnn.operators import SPNNOperator
    from spnn.testing import perturb_

    net = perturb_(SPNN.build((3, 8, 8), (4,), hidden=8)).double()
    x, y = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    op = SPNNOperator(net, mode="natural")
    completion = op.complete(x)
    assert completion.conditioners is not None and len(completion.conditioners) == len(net.blocks)
    gx, q = completion
    plain = net.inverse(gx + 0.5 * (y - gx), q)
    assert torch.equal(op.back_project(x, y, 0.5), plain)
    assert torch.equal(op.back_project(x, y, 0.5, completion=completion), plain)
    assert SPNNOperator(net, mode="learned").complete(x).conditioners is None
    with pytest.raises(ShapeError, match="conditioners"):
        net.inverse(gx, q, completion.conditioners[:-1])


@pytest.mark.parametrize("mode", MODES)
def test_feedback_emulator_meets_the_black_box_where_the_emulator_alone_stalls(mode):
    """A black box that differs from the emulator by a smooth map: iterated feedback steps meet A(x) = y to
    1e-8, the emulator alone stops at its own error (g(x) = y, A(x) != y)."""
    net = _net()
    emulator = SPNNOperator(net, mode=mode)
    black_box = lambda x: 1.1 * net(x) + 0.05 * torch.tanh(net(x))  # noqa: E731
    op = FeedbackEmulator(emulator, black_box)
    x0 = torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1
    y = black_box(torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1)
    x_fb, x_em = x0, x0
    for _ in range(30):
        x_fb, x_em = op.back_project(x_fb, y), emulator.back_project(x_em, y)
    assert rel(op.A(x_fb), y) <= 1e-8
    assert rel(black_box(x_em), y) > 1e-2 and rel(net(x_em), y) <= 1e-10
    assert op.A(x_fb).shape == y.shape and torch.equal(op.pinv(y), emulator.pinv(y))


def test_feedback_emulator_is_nlbp_when_the_black_box_is_the_emulator():
    net = _net()
    emulator = SPNNOperator(net, mode="natural")
    x, y = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1, torch.randn(2, 5, dtype=torch.float64)
    out = FeedbackEmulator(emulator, emulator).back_project(x, y, 0.5)
    assert rel(out, emulator.back_project(x, y, 0.5)) <= 1e-10


def test_feedback_emulator_refuses_what_it_cannot_use():
    with pytest.raises(ConfigError, match="SPNNOperator"):
        FeedbackEmulator(AveragePool((3, 8, 8), 2), Identity((3, 8, 8)))
    with pytest.raises(ConfigError, match="callable"):
        FeedbackEmulator(SPNNOperator(_net()), 3.0)

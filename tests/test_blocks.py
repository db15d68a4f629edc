import pytest
import torch
import torch.nn.functional as F
from transform_checks import TransformChecks, rel

from spnn.blocks import PixelUnshuffle, SurjectiveCoupling, block_from_config
from spnn.errors import ShapeError
from spnn.mixing import CayleyMixing, HouseholderMixing, _no_tf32
from spnn.subnets import SubNet, SubNetPair, plain_spec, unet_spec
from spnn.testing import perturb_


class TestUnshuffleSquare(TransformChecks):
    def make(self):
        return PixelUnshuffle((3, 8, 8), 2)


class TestUnshuffleRect(TransformChecks):
    def make(self):
        return PixelUnshuffle((2, 6, 10), (3, 5))


class TestCouplingCayley(TransformChecks):
    def make(self):
        return perturb_(SurjectiveCoupling((8, 4, 4), 3, hidden=8))


class TestCouplingHouseholder(TransformChecks):
    def make(self):
        return perturb_(SurjectiveCoupling((8, 4, 6), 5, hidden=8, mixing="householder",
                                           mixing_options={"reflections": 3}))


class TestCouplingUnet(TransformChecks):
    def make(self):
        return perturb_(SurjectiveCoupling((6, 4, 4), 2, hidden=4, subnet="unet"))


class TestCouplingDense1x1(TransformChecks):
    def make(self):
        return perturb_(SurjectiveCoupling((20, 1, 1), 4, hidden=8))


def test_unshuffle_matches_torch():
    x = torch.randn(2, 3, 8, 8)
    y, z = PixelUnshuffle((3, 8, 8), 4)(x)
    assert z is None
    assert torch.equal(y, F.pixel_unshuffle(x, 4))


def test_unshuffle_rejects_non_divisible():
    with pytest.raises(ValueError, match="divisible"):
        PixelUnshuffle((3, 10, 8), 4)


@pytest.mark.parametrize("cls", [CayleyMixing, HouseholderMixing])
def test_mixing_orthogonal_and_exact(cls):
    m = cls(16).double()
    torch.nn.init.normal_(m.weight, std=0.5)
    w = m.matrix()
    assert torch.allclose(w @ w.T, torch.eye(16, dtype=torch.float64), atol=1e-13)
    x = torch.randn(2, 16, 3, 3, dtype=torch.float64)
    assert rel(m.inverse(m(x)), x) < 1e-14


def test_cayley_starts_at_identity_and_householder_does_not():
    assert torch.equal(CayleyMixing(5).matrix(), torch.eye(5))
    assert not torch.allclose(HouseholderMixing(5).matrix(), torch.eye(5))


def test_mixing_matrix_float32_under_autocast():
    m = CayleyMixing(8)
    torch.nn.init.normal_(m.weight, std=0.3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = m.matrix()
    assert w.dtype == torch.float32
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)


def test_fresh_coupling_is_identity_on_kept_channels():
    blk = SurjectiveCoupling((6, 2, 2), 2, hidden=4)
    x = torch.randn(3, 6, 2, 2)
    y, z = blk(x)
    assert torch.equal(y, x[:, :2]) and torch.equal(z, x[:, 2:])
    assert torch.equal(blk.learned_latent(y), torch.zeros_like(z))


def test_coupling_needs_fewer_output_channels():
    with pytest.raises(ValueError, match="out_channels < in_channels"):
        SurjectiveCoupling((4, 2, 2), 4)


def test_coupling_latent_shape_checked():
    blk = SurjectiveCoupling((6, 2, 2), 2, hidden=4)
    with pytest.raises(ShapeError, match="latent"):
        blk.inverse(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))


def test_block_config_round_trip():
    blk = perturb_(SurjectiveCoupling((8, 2, 2), 3, hidden=5, mixing="householder",
                                      mixing_options={"reflections": 2}, scale_bound=1.5))
    clone = block_from_config(blk.config())
    clone.load_state_dict(blk.state_dict())
    x = torch.randn(2, 8, 2, 2)
    assert torch.equal(clone(x)[0], blk(x)[0])


def test_matrix_cache_is_invalidated_by_updates():
    m = CayleyMixing(6)
    with torch.no_grad():
        w0 = m.matrix()
        assert m.matrix() is w0  # cached while frozen
        m.weight.add_(0.1 * torch.randn(6, 6))  # in-place update bumps the version
        w1 = m.matrix()
    assert not torch.allclose(w0, w1)
    assert torch.allclose(m.matrix(), w1)  # with grad: recomputed, same value
    m.double()
    with torch.no_grad():
        assert m.matrix().dtype == torch.float64


def _random_pair(spec):
    torch.manual_seed(0)
    a, b = SubNet(spec), SubNet(spec)
    for p in [*a.parameters(), *b.parameters()]:
        torch.nn.init.normal_(p, std=0.3)
    return a, b


@pytest.mark.parametrize("spec,shape,exact", [(plain_spec(5, 7, 16, (4, 4)), (3, 5, 4, 4), True),
                                              (plain_spec(5, 7, 16, (4, 4), depth=3), (3, 5, 4, 6), True),
                                              (plain_spec(5, 7, 16, (1, 1)), (3, 5, 1, 1), False),
                                              (plain_spec(5, 7, 16, (4, 4)), (3, 5, 1, 1), False)],
                         ids=["3x3", "depth-3", "1x1-kernels", "3x3-on-1x1-map"])
def test_subnet_pair_equals_the_two_bodies(spec, shape, exact):
    """Stacked first layer, block-diagonal later ones: the zeros add exactly, so the convolutions agree bit for
    bit on the CPU; the matrix route on 1x1 maps to float rounding (another product order)."""
    a, b = _random_pair(spec)
    pair = SubNetPair(a, b)
    assert pair.pairable
    x = torch.randn(*shape)
    with torch.no_grad():
        ha, hb = pair.bodies(x)
    for h, net in ((ha, a), (hb, b)):
        assert h.shape == net.body(x).shape
        assert torch.equal(h, net.body(x)) if exact else torch.allclose(h, net.body(x), atol=1e-5)


def test_subnet_pair_gradients_equal_the_two_bodies():
    a, b = _random_pair(plain_spec(5, 7, 16, (4, 4)))
    x = torch.randn(3, 5, 4, 4, requires_grad=True)
    ha, hb = SubNetPair(a, b).bodies(x)
    (ha.square().sum() + hb.sin().sum()).backward()
    paired = [p.grad.clone() for p in [*a.parameters(), *b.parameters(), x]]
    for p in [*a.parameters(), *b.parameters(), x]:
        p.grad = None
    (a.body(x).square().sum() + b.body(x).sin().sum()).backward()
    for g, p in zip(paired, [*a.parameters(), *b.parameters(), x]):
        assert torch.allclose(g, p.grad, atol=1e-5)


def test_subnet_pair_is_rebuilt_after_updates_and_skips_other_nets():
    a, b = _random_pair(plain_spec(5, 7, 16, (4, 4)))
    pair, x = SubNetPair(a, b), torch.randn(2, 5, 4, 4)
    with torch.no_grad():
        before = pair.bodies(x)[1]
        b.net[0].weight.add_(0.5)  # an optimiser's in-place step
        after = pair.bodies(x)[1]
    assert not torch.allclose(before, after) and torch.equal(after, b.body(x))
    for spec in (unet_spec(5, 7, 16, (4, 4)), [["conv", 5, 7, 3, 2, 1]]):  # transposed or strided convolutions
        u, v = _random_pair(spec)
        assert not SubNetPair(u, v).pairable
        assert all(torch.equal(h, n.body(x)) for h, n in zip(SubNetPair(u, v).bodies(x), (u, v)))
    u, v = SubNet(plain_spec(5, 7, 16, (4, 4))), SubNet(plain_spec(5, 7, 8, (4, 4)))
    assert not SubNetPair(u, v).pairable  # different widths


def test_kept_weights_from_inference_mode_do_not_enter_autograd():
    """Weights kept under torch.inference_mode are rebuilt for a frozen network differentiated in its input
    (DPS after an NLBP run in one process), instead of failing with 'Inference tensors cannot be saved'."""
    blk = perturb_(SurjectiveCoupling((8, 4, 4), 3, hidden=8)).requires_grad_(False)
    x = torch.randn(2, 8, 4, 4)
    with torch.inference_mode():
        y_ref = blk(x)[0]
    x.requires_grad_(True)
    y = blk(x)[0]
    y.sum().backward()
    assert torch.equal(y.detach(), y_ref) and x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [CayleyMixing, HouseholderMixing])
def test_mixing_float32_round_trip_with_tf32_allowed(cls, device, tf32_allowed):
    """TF32 (cuDNN's default, or enabled globally for matmuls) must not leak into W, W x or W^T h."""
    m = cls(256).to(device)
    torch.nn.init.normal_(m.weight, std=0.05)
    x = torch.randn(4, 256, 4, 4, device=device)
    cudnn = torch.backends.cudnn
    before = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic)
    with torch.no_grad():
        w = m.matrix()
        assert (w.double() @ w.double().T - torch.eye(256, device=device, dtype=torch.float64)).abs().max() < 1e-5
        assert rel(m.inverse(m(x)), x) < 1e-5
        assert rel(m(x), torch.einsum("oc,bchw->bohw", w.double(), x.double()).float()) < 1e-5
    with _no_tf32():  # the guard itself, also where no CUDA device runs the lines above
        assert not cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "highest"
    assert cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "high"  # restored after each call
    assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic) == before


@pytest.mark.parametrize("spec", [plain_spec(5, 7, 16, (1, 1)), plain_spec(5, 7, 16, (4, 4)),
                                  [["conv", 5, 9, 3, 1, 1], ["relu"], ["conv", 9, 7, 5, 1, 2]]],
                         ids=["1x1-kernels", "3x3-kernels", "mixed-kernels"])
def test_subnet_matrix_route_on_1x1_maps_equals_the_convolutions(spec):
    torch.manual_seed(0)
    net = SubNet(spec)
    for layer in net.net:
        if isinstance(layer, torch.nn.Conv2d):
            torch.nn.init.normal_(layer.weight, std=0.3)
    assert net.pointwise
    x = torch.randn(6, 5, 1, 1)
    assert torch.allclose(net.body(x), net.net(x), atol=1e-5)
    assert net.body(x).shape == (6, 7, 1, 1)
    x4 = torch.randn(2, 5, 4, 4)  # larger maps take the convolutions themselves
    assert torch.equal(net.body(x4), net.net(x4))


def test_subnet_matrix_route_is_not_taken_where_it_would_differ():
    for spec in (unet_spec(5, 7, 16, (4, 4)), [["conv", 5, 7, 3, 1, 0]], [["conv", 5, 7, 3, 2, 1]]):
        assert not SubNet(spec).pointwise, spec

import json
import subprocess
import sys

import pytest
import torch
from transform_checks import F32_TOL, F64_TOL, TransformChecks, rel

from spnn import SPNN, penrose_report
from spnn.errors import CheckpointError, LayoutError, ShapeError
from spnn.testing import perturb_

SHAPES = [((3, 32, 32), (40,)), ((1, 28, 28), (10,)), ((3, 48, 80), (12,)), ((3, 64, 64), (3, 16, 16))]


class TestNetworkVector(TransformChecks):
    def make(self):
        return perturb_(SPNN.build((3, 8, 12), (5,), hidden=6))


class TestNetworkFeatureMap(TransformChecks):
    def make(self):
        return perturb_(SPNN.build((2, 8, 8), (2, 4, 4), hidden=6, mixing="householder"))


class TestNetworkUnet(TransformChecks):
    def make(self):
        return perturb_(SPNN.build((3, 8, 8), (4,), hidden=4, subnet="unet"))


@pytest.mark.parametrize("mixing", ["cayley", "householder"])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}->{s[1]}")
def test_penrose_identities(shapes, mixing):
    net = perturb_(SPNN.build(*shapes, hidden=16, mixing=mixing), 0.1)
    x = torch.rand(4, *shapes[0]) * 2 - 1
    for dtype, tol in [(torch.float32, F32_TOL), (torch.float64, F64_TOL)]:
        report = penrose_report(net.to(dtype), x.to(dtype))
        residuals = {k: v for k, v in report.items() if "mean_square" not in k}
        assert len(residuals) == 7
        assert max(residuals.values()) <= tol, (dtype, residuals)


def test_penrose_identities_on_device_with_tf32_allowed(device, tf32_allowed):
    """TF32 must not leak into the identities: cuDNN picks convolution algorithms by memory layout, and the s, t
    nets see a strided slice going forward but a fresh latent going back (SPNNs trained on a GPU before this
    guard showed right-inverse residuals of 3e-4 to 1.2e-3 there)."""
    net = perturb_(SPNN.build((3, 32, 32), (40,), hidden=16), 0.1).to(device)
    x = torch.rand(8, 3, 32, 32, device=device) * 2 - 1
    with torch.no_grad():
        report = penrose_report(net, x)
    residuals = {k: v for k, v in report.items() if "mean_square" not in k}
    assert max(residuals.values()) <= F32_TOL, residuals


def test_perturbed_network_is_not_trivial():
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=8), 0.1).double()
    y = net(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    learned, natural = net.pinv(y, "learned"), net.pinv(y, "natural")
    assert rel(learned, natural) > 1e-3  # r is not 0: the two pseudo-inverses differ


@pytest.mark.parametrize("mixing", ["cayley", "householder"])
def test_fresh_network_is_linear_with_orthonormal_rows(mixing):
    net = SPNN.build((2, 4, 4), (6,), hidden=4, mixing=mixing).double()
    n = 2 * 4 * 4
    eye = torch.eye(n, dtype=torch.float64).reshape(n, 2, 4, 4)
    a = net(eye).T  # columns are g(e_i): A is 6 x 32
    assert torch.allclose(a @ a.T, torch.eye(6, dtype=torch.float64), atol=1e-12)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    assert torch.allclose(net(x), x.reshape(3, -1) @ a.T, atol=1e-12)  # linear
    y = torch.randn(3, 6, dtype=torch.float64)
    natural = net.pinv(y, mode="natural").reshape(3, -1)
    assert torch.allclose(natural, y @ a, atol=1e-12)  # A^T y
    assert torch.allclose(net.pinv(y, mode="learned").reshape(3, -1), natural, atol=1e-12)


def test_natural_origin_completion_uses_latents_of_zero_image():
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=6)).double()
    y = torch.randn(2, 5, dtype=torch.float64)
    x, latents = net.pinv(y, mode="natural", origin="completion", return_latents=True)
    _, z0 = net.complete(torch.zeros(1, 3, 8, 8, dtype=torch.float64))
    _, z = net.complete(x)
    assert all(torch.allclose(a, b.expand_as(a), atol=1e-12) for a, b in zip(z, z0))
    assert rel(net(x), y) < 1e-12


def test_natural_pinv_is_closest_in_completed_coordinates():
    """Among preimages of y, the natural pinv has the smallest latent norm (it is 0)."""
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=6)).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y, z = net.complete(x)
    xn = net.pinv(y, mode="natural")
    assert rel(net(xn), y) < 1e-12
    _, zn = net.complete(xn)
    assert sum(float(t.detach().norm()) for t in zn) < 1e-10


def _tiny():
    return perturb_(SPNN.build((2, 4, 4), (3,), hidden=2, factor=2, reflections=2), 0.3).double()


def test_gradcheck_through_every_map():
    net = _tiny()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: net(x), (x,))
    y, latents = net.complete(x.detach())
    y = y.requires_grad_()
    zs = [z.clone().requires_grad_() for z in latents]
    assert torch.autograd.gradcheck(lambda y, *zs: net.inverse(y, list(zs)), (y, *zs))
    for mode in ["learned", "natural"]:
        assert torch.autograd.gradcheck(lambda y, m=mode: net.pinv(y, mode=m), (y,))


def test_gradcheck_wrt_parameters():
    net = _tiny()
    names, params = zip(*[(k, p.detach().clone().requires_grad_()) for k, p in net.named_parameters()])
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    y0 = torch.randn(2, 3, dtype=torch.float64)

    def f(*ps):
        with torch.nn.utils.stateless._reparametrize_module(net, dict(zip(names, ps))):
            return net(x), net.pinv(y0, mode="learned"), net.pinv(y0, mode="natural")

    assert torch.autograd.gradcheck(f, params, atol=1e-6)


def test_bad_inputs_have_clear_errors():
    net = SPNN.build((3, 8, 8), (5,), hidden=4)
    with pytest.raises(ShapeError, match="wrong channel count"):
        net(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ShapeError, match="wrong spatial size"):
        net(torch.zeros(1, 3, 8, 9))
    with pytest.raises(ShapeError, match="missing batch dimension"):
        net(torch.zeros(3, 8, 8))
    y, latents = net.complete(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ShapeError, match=f"expected {len(latents)} latents"):
        net.inverse(y, latents[:1])
    with pytest.raises(ShapeError, match="latent 0"):
        net.inverse(y, [latents[0][:, :1], *latents[1:]])
    with pytest.raises(ShapeError, match="SPNN output y"):
        net.pinv(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="unknown pseudo-inverse mode"):
        net.pinv(y, mode="closest")
    net.check_finite = True
    with pytest.raises(ShapeError, match="NaN"):
        net(torch.full((1, 3, 8, 8), float("nan")))


def test_layout_errors_say_why():
    with pytest.raises(LayoutError, match="not fewer than"):
        SPNN.build((1, 2, 2), (4,))
    with pytest.raises(LayoutError, match="must divide"):
        SPNN.build((3, 30, 30), (3, 8, 8))
    with pytest.raises(LayoutError, match="vector"):
        SPNN.build((3, 8, 8), (1, 2))


def test_wide_couplings_fall_back_to_householder():
    net = SPNN.build((3, 64, 64), (10,), factor=8, hidden=4, dense_max=512)
    kinds = {b.in_shape[0]: b.mix.kind for b in net.blocks if hasattr(b, "mix")}
    assert kinds[max(kinds)] == "householder" and kinds[min(kinds)] == "cayley"


def test_explicit_layout_and_non_power_of_two():
    net = SPNN.from_layout((3, 12, 20), [("unshuffle", (3, 5)), ("coupling", 10),
                                          ("unshuffle", 4), ("coupling", 6, {"mixing": "householder"})],
                           output_shape=(6,), hidden=4)
    assert net.output_shape == (6,) and net.latent_shapes == [(35, 4, 4), (154, 1, 1)]


def test_save_load_round_trip(tmp_path):
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=6, mixing="householder"))
    path = tmp_path / "net.safetensors"
    net.save(path)
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind
    clone = SPNN.load(path)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(clone(x), net(x))
    assert torch.equal(clone.pinv(net(x)), net.pinv(net(x)))


def test_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        SPNN.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="corrupt|truncated|safetensors"):
        SPNN.load(bad)
    net = SPNN.build((3, 8, 8), (5,), hidden=6)
    path = tmp_path / "net.safetensors"
    net.save(path)
    from safetensors.torch import load_file, save_file
    state = load_file(path)
    from spnn.io import read_metadata
    meta = {k: json.dumps(v) for k, v in read_metadata(path).items()}
    state.pop(next(iter(state)))
    save_file(state, str(tmp_path / "missing_key.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="missing keys"):
        SPNN.load(tmp_path / "missing_key.safetensors")
    save_file(state, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="no spnn network description"):
        SPNN.load(tmp_path / "plain.safetensors")


def test_cli_check_and_penrose(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spnn.cli.main", "check", "--input", "3,16,16",
                          "--output", "7", "--json"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["float64.inverse"] < F64_TOL and report["float32.natural.right_inverse"] < F32_TOL
    net = perturb_(SPNN.build((3, 8, 8), (5,), hidden=6))
    net.save(tmp_path / "n.safetensors")
    out = subprocess.run([sys.executable, "-m", "spnn.cli.main", "penrose", str(tmp_path / "n.safetensors"),
                          "--float64"], capture_output=True, text=True, check=True)
    assert "learned.right_inverse" in out.stdout
    out = subprocess.run([sys.executable, "-m", "spnn.cli.main", "penrose", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "no such file" in out.stderr


def test_learned_latents_match_the_pseudo_inverse():
    """learned_latents stops above the last latent block; the latents are those of pinv(y) exactly."""
    net = SPNN.build((3, 16, 8), (6,), hidden=8)
    perturb_(net)
    y = torch.randn(4, 6)
    _, expected = net.pinv(y, mode="learned", return_latents=True)
    got = net.learned_latents(y)
    assert len(got) == len(expected) == len(net.latent_shapes)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("n", [1, 3])
def test_inverse_along_walk_equals_the_two_walks(n):
    """One walk down the blocks for Z(source) and G^-1(y, latent_of(Z)) together, as the two done apart."""
    net = perturb_(SPNN.build((3, 16, 8), (6,), hidden=8)).double()
    y, source = torch.randn(n, 6, dtype=torch.float64), torch.randn(n, 6, dtype=torch.float64)
    seen = []

    def latent_of(i, z):
        seen.append(i)
        return 0.5 * z + i

    apart = net.inverse(y, [latent_of(i, z) for i, z in enumerate(net.learned_latents(source))])
    seen.clear()
    together = net.inverse_along_walk(y, source, latent_of)
    assert seen == list(range(len(net.latent_shapes)))[::-1]  # from the last latent to the first
    assert rel(together, apart) < 1e-12 and together.shape == (n, 3, 16, 8)
    with pytest.raises(ShapeError, match="the walk's source has shape"):
        net.inverse_along_walk(y, source[:, :3], latent_of)

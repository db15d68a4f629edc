"""The authors' SPNN checkpoints: numbers from their code (fixtures) and key/shape manifests of their layouts,
both produced once by running their public model code; their code is not in this repository."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spnn.cli.main import main
from spnn.convert import AUTHORS_PRESETS, authors_preset, convert_authors_state, detect_preset, load_authors_spnn
from spnn.errors import CheckpointError
from spnn.network import SPNN

DATA = "tests/data/"


@pytest.mark.parametrize("mixing", ["cayley", "householder"])
def test_fixture_outputs_reproduced(mixing):
    net = load_authors_spnn(DATA + f"authors_spnn_16_{mixing}.state.safetensors")
    io = load_file(DATA + f"authors_spnn_16_{mixing}.io.safetensors")
    with torch.no_grad():
        y, latents = net.complete(io["x"])
        checks = {
            "logits": (y, io["logits"]),
            "latent.1": (latents[0], io["latent.1"]),
            "latent.3": (latents[1], io["latent.3"]),
            "pinv_y": (net.pinv(io["y"], mode="learned"), io["pinv_y"]),
            "inverse": (net.inverse(io["logits"], [io["latent.1"], io["latent.3"]]), io["inverse"]),
        }
    for name, (ours, theirs) in checks.items():
        assert float((ours - theirs).abs().max()) <= 1e-5, name


@pytest.mark.parametrize("name", ["celeba32", "celeba64", "celeba256", "celeba32-householder",
                                  "celeba64-householder", "celeba256-householder"])
def test_preset_manifests(name):
    manifest = json.loads(Path(DATA, "authors_manifests.json").read_text())[name]
    preset, mixing = (name.split("-") + ["cayley"])[:2]
    with torch.device("meta"):
        net = authors_preset(preset, mixing)
    fake = {k: torch.empty(shape, device="meta") for k, shape in manifest.items()}
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    converted = {k: tuple(v.shape) for k, v in convert_authors_state(fake).items()}
    assert converted == ours
    assert detect_preset(fake) == (preset, mixing)
    if preset == "celeba256":
        assert 139e6 < sum(v.numel() for v in net.state_dict().values()) < 151e6


def test_presets_have_paper_shapes():
    assert AUTHORS_PRESETS["celeba256"]["input_shape"] == [3, 256, 256]
    with torch.device("meta"):
        net = authors_preset("celeba256")
    assert net.output_shape == (40,) and net.attribute_names[15] == "Eyeglasses"
    assert [b.in_shape[0] for b in net.blocks if hasattr(b, "mix")] == [48, 192, 768, 3072, 1024]


def test_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_authors_spnn(tmp_path / "x.pth")
    torch.save({"blocks.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="no pinn.blocks"):
        load_authors_spnn(tmp_path / "bad.pth")
    torch.save({"pinn.blocks.1.mix.A_unconstrained": torch.zeros(5, 5)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="mixing sizes"):
        load_authors_spnn(tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="unknown preset"):
        authors_preset("celeba128")


def test_cli_convert_round_trip(tmp_path):
    src = DATA + "authors_spnn_16_cayley.state.safetensors"
    assert main(["convert", src, str(tmp_path / "ours.safetensors")]) == 0
    ours = SPNN.load(tmp_path / "ours.safetensors")
    io = load_file(DATA + "authors_spnn_16_cayley.io.safetensors")
    assert float((ours(io["x"]) - io["logits"]).abs().max().detach()) <= 1e-5


def test_download_offline_gives_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert main(["download", "spnn-celebahq", "--out", str(tmp_path)]) == 2
    assert "may be offline" in capsys.readouterr().err


LAYOUTS = json.loads(Path(DATA, "authors_layouts.json").read_text())["layouts"]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_custom_layout_manifests_load(name):
    """Their custom-layout mode, with the hand-written sub-networks their blocks pick by channel counts, per-block
    img_size=256 and mixing types, and a feature-map output: every key and shape of their network."""
    m = LAYOUTS[name]
    from spnn.convert import authors_custom

    with torch.device("meta"):
        net = authors_custom(m["layout"], m["img_ch"], m["img_size"])
    state = {k: torch.empty(v, device="meta") for k, v in m["keys"].items()}
    from spnn.network import load_state_checked

    load_state_checked(net, convert_authors_state(state), name, check_only=True)
    assert sum(p.numel() for p in net.parameters()) == m["num_params"]
    assert net.output_shape == tuple(m.get("output_shape", [net.output_shape[0]]))


def test_custom_layout_keeps_each_blocks_mixing(tmp_path):
    from safetensors.torch import save_file

    m = LAYOUTS["custom-mixed-mixing"]
    gen = torch.Generator().manual_seed(0)
    state = {k: 0.02 * torch.randn(v, generator=gen) for k, v in m["keys"].items()}
    save_file(state, str(tmp_path / "mixed.safetensors"),
              metadata={"layout": json.dumps(m["layout"]), "img_size": "16", "img_ch": "3"})
    net = load_authors_spnn(tmp_path / "mixed.safetensors")
    kinds = [b.mix.kind for b in net.blocks if hasattr(b, "mix")]
    assert kinds == ["householder", "cayley"]
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        y, latents = net.complete(x)
    assert float((net.inverse(y, latents) - x).abs().max()) < 1e-4  # their eps 1e-6 Cayley, W^T inverse


def _their_cayley(b: torch.Tensor, eps: float, solve_dtype) -> torch.Tensor:
    """Reference: W = solve(I + A + eps I, I - A), A = B - B^T, in ``solve_dtype``."""
    b = b.to(solve_dtype)
    a = b - b.T
    eye = torch.eye(len(b), dtype=solve_dtype)
    return torch.linalg.solve(eye + a + eps * eye, eye - a)


@pytest.mark.parametrize("version,eps,solve", [("a901837", 1e-6, None), ("later", 1e-4, torch.float32)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_version_reproduces_each_cayley_arithmetic(version, eps, solve, dtype):
    """Each code version's logits, on random weights, to <= 1e-6 relative (their formula written out here)."""
    from spnn.convert import authors_preset

    torch.manual_seed(0)
    net = authors_preset("celeba32", version=version).to(dtype)
    exact = authors_preset("celeba32", version="exact").to(dtype)
    for p in net.parameters():
        p.data += 0.02 * torch.randn_like(p)
    exact.load_state_dict(net.state_dict())
    for blk in net.blocks:
        if hasattr(blk, "mix"):
            w = _their_cayley(blk.mix.weight.detach(), eps, solve or dtype).to(dtype)
            assert float((blk.mix.matrix() - w).abs().max()) == 0.0
    x = torch.rand(2, 3, 32, 32, dtype=dtype) * 2 - 1
    with torch.no_grad():
        y, y_exact = net(x), exact(x)
    rel = float((y - y_exact).norm() / y_exact.norm())
    assert rel > 0  # the versions differ ...
    assert rel < (1e-3 if version == "later" else 1e-4)  # ... at the level of their epsilon


def test_float64_state_dict_loads_in_float64(tmp_path):
    state = load_file(DATA + "authors_spnn_16_cayley.state.safetensors")
    meta = __import__("safetensors").safe_open(DATA + "authors_spnn_16_cayley.state.safetensors", "pt").metadata()
    from safetensors.torch import save_file

    save_file({k: v.double() for k, v in state.items()}, str(tmp_path / "f64.safetensors"), metadata=meta)
    net = load_authors_spnn(tmp_path / "f64.safetensors")
    assert next(net.parameters()).dtype == torch.float64
    assert next(load_authors_spnn(tmp_path / "f64.safetensors", dtype=torch.float32).parameters()).dtype == \
        torch.float32

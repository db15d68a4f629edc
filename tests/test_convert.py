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
    with pytest.raises(CheckpointError, match="mixing sizes"):
        load_authors_spnn(tmp_path / "bad.pth")
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

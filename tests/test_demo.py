"""The demo end to end on the shipped models (2 sampling steps: a smoke test of the wiring, not quality)."""

import json

import pytest
import torch

from spnn import penrose_report
from spnn.cli.demo import run_demo
from spnn.models import ASSETS, DEFAULT_SPNN, load_evaluator, load_prior, load_spnn


def test_shipped_models_load():
    net, prior, ev = load_spnn(), load_prior(), load_evaluator()
    assert net.input_shape == prior.image_shape == ev.input_shape == (3, 32, 32)
    assert net.attribute_names == ev.attribute_names and len(net.attribute_names) == 22


@pytest.mark.parametrize("path", [DEFAULT_SPNN, *(ASSETS / f"avatars32-spnn-v{k}.safetensors" for k in (1, 2))],
                         ids=lambda p: p.stem)
def test_every_kept_spnn_version_is_a_calibrated_pseudo_inverse(path):
    """The shipped SPNN and the former versions kept beside it (their results name them): every identity of
    `penrose_report` holds in float32 to 1e-4 relative, for images in [-1, 1] and logits in [-8, 8] (the edits' levels
    are 3-6), and each file carries its own calibration."""
    net = load_spnn(path)
    gen = torch.Generator().manual_seed(0)
    x, y = 2 * torch.rand(8, *net.input_shape, generator=gen) - 1, 16 * torch.rand(8, 22, generator=gen) - 8
    residuals = {k: v for k, v in penrose_report(net, x, y).items() if not k.endswith("mean_square")}
    assert max(residuals.values()) <= 1e-4, residuals
    assert net.edit_calibration is not None and net.edit_calibration["logit"] > 0


@pytest.mark.parametrize("version", [1, 2])
def test_demo_runs(tmp_path, monkeypatch, device, version):
    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    summary = run_demo(tmp_path, steps=2, n=2, data_n=40, data_version=version, device=device)
    assert summary["device"] == str(device) and summary["data_version"] == version
    for name in ["reconstruction.png", "edits.png", "generation.png", "restoration-sr4.png", "summary.json"]:
        assert (tmp_path / name).exists(), name
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 2
    assert summary["reconstruction"]["consistency_max_abs"] < 1e-2  # logits are O(10): relative 1e-4
    assert summary["restoration_sr4"]["consistency_max_abs"] < 1e-4
    rec = summary["reconstruction"]
    assert 0 <= rec["nearest_is_own"] <= 1 and rec["rmse_to_original"] > 0 and rec["rmse_between_seeds"] > 0
    assert [g["attributes"] for g in summary["generation"]] == [
        ["Pale_Skin", "Black_Hair"], ["Blond_Hair", "Smiling"], ["Eyeglasses", "Smiling", "Mustache"]]

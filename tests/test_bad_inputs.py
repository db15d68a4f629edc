"""A table of bad inputs to the CLI and the Python API.

Each CLI case asserts: exit status 2, no traceback, key words of the one-line message, and no file written:
not even the case's output folder is left behind. Each API case asserts the exception type and key words of its message.
"""

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from spnn import SPNN, penrose_report
from spnn.cli.main import main
from spnn.data.avatars import AVATAR_ATTRIBUTES
from spnn.diffusion.prior import Prior, build_unet
from spnn.errors import CheckpointError, ConfigError, DataError, LayoutError, ShapeError
from spnn.testing import perturb_, write_tiny_models

MARKER = "pwned-marker"


class _Evil:
    """A pickle whose loading would create a file (it must never be loaded)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = write_tiny_models(tmp_path_factory.mktemp("bad"))
    SPNN.build((3, 16, 16), (22,), hidden=4, attribute_names=AVATAR_ATTRIBUTES).save(root / "spnn16.safetensors")
    (root / "images").mkdir()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "images" / "a.png")
    (root / "empty").mkdir()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "tiny.png")
    Image.fromarray(np.zeros((120, 120), np.uint8)).save(root / "bomb.png")
    (root / "text.png").write_text("not an image")
    (root / "a_file").write_text("x")
    (root / "truncated.safetensors").write_bytes((root / "spnn.safetensors").read_bytes()[:500])
    # a well-formed file whose description asks for a far larger network than its tensors
    from safetensors.torch import save_file

    from spnn.io import read_metadata

    cfg = read_metadata(root / "spnn.safetensors")["spnn_config"]
    for block in cfg["layout"]:
        for key in ("s", "t", "r"):
            for layer in block.get(key) or []:
                if layer[0] == "conv":
                    layer[1:3] = [max(layer[1], 1) * 4000, max(layer[2], 1) * 4000]
    save_file({"x": torch.zeros(1)}, str(root / "crafted.safetensors"), metadata={"spnn_config": json.dumps(cfg)})
    torch.save({"pinn.blocks.1.mix.A_unconstrained": _Evil(str(root / MARKER))}, root / "evil.pth")
    (root / "bad.yaml").write_text("phase1: [unclosed\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "unknown.yaml").write_text("phase1:\n  loop:\n    bogus: 1\n")
    (root / "crossed.yaml").write_text("phase1:\n  counterfactual_step: 1.0\n")
    (root / "judged-missing.yaml").write_text(f"phase1:\n  judged: 1.0\n  judged_path: {root / 'none.safetensors'}\n")
    (root / "judged-nopath.yaml").write_text("phase1:\n  judged: 1.0\n")
    (root / "judged-wrong.yaml").write_text(f"phase1:\n  judged: 1.0\n  judged_path: {root / 'spnn.safetensors'}\n")
    for name, rows in {"escape": ["../outside.png,1"], "absolute": ["/etc/hostname,1"], "empty": None,
                       "headeronly": []}.items():
        d = root / f"csv-{name}"
        d.mkdir()
        text = "" if rows is None else "filename,Smiling\n" + "\n".join(rows) + ("\n" if rows else "")
        (d / "attributes.csv").write_text(text)
    cache = root / "cache"
    cache.mkdir()
    (cache / "avatars-v1-s0-8px-n100.npz").write_bytes(b"PK\x03\x04truncated")
    return root


def _cli(files, tmp_path):
    """Placeholders: {d} the fixture folder, {out} a fresh output folder; tiny models for the task commands."""
    def expand(argv):
        return [a.format(d=files, out=tmp_path / "out") for a in argv]
    return expand


TASK = ["--prior", "{d}/prior", "--spnn", "{d}/spnn.safetensors", "--evaluator", "none", "--out", "{out}", "--cpu"]
EDIT = ["edit", *TASK, "--set", "Smiling=1", "--steps", "2", "{d}/images"]
GEN = ["generate", *TASK, "--set", "Smiling=1", "--n", "1", "--steps", "2"]
REC = ["reconstruct", *TASK, "--steps", "2", "{d}/images"]
RESTORE = ["restore", "--prior", "{d}/prior", "--evaluator", "none", "--out", "{out}", "--cpu", "--steps", "2",
           "{d}/images"]
TRAIN = ["train", "--out", "{out}", "--size", "8", "--n", "40", "--quiet", "--cpu"]
EVAL = ["evaluator", "train", "--out", "{out}", "--size", "8", "--n", "40", "--quiet", "--cpu"]
PRIOR = ["prior", "train", "--out", "{out}", "--size", "8", "--n", "40", "--quiet", "--cpu"]
SAMPLE = ["sample", "--prior", "{d}/prior", "--out", "{out}/s.png", "--cpu", "--steps", "2", "--n", "1"]
CHECK = ["check", "--input", "3,8,8", "--output", "4", "--hidden", "4", "--n", "1"]

CLI_CASES = [
    # --set: values, merging, syntax
    (EDIT[:-1] + ["{d}/images", "--set", "Eyeglasses=nan"], ["must be 1", "or 0"]),
    (EDIT[:-1] + ["{d}/images", "--set", "Eyeglasses=7"], ["must be 1"]),
    (EDIT[:-1] + ["{d}/images", "--set", "Eyeglasses=1", "--set", "Eyeglasses=0"], ["both 0 and 1"]),
    (EDIT[:-1] + ["{d}/images", "--set", "Eyeglasses"], ["NAME=VALUE"]),
    (EDIT[:-1] + ["{d}/images", "--set", "=1"], ["NAME=VALUE"]),
    (EDIT[:-1] + ["{d}/images", "--set", "Nonexistent=1"], ["unknown attribute", "Nonexistent", "known"]),
    (GEN[:-4] + ["--set", "Smiling=0.5", "--n", "1"], ["must be 1"]),
    # numeric options with their ranges
    (EDIT + ["--eta", "nan"], ["--eta", "[0, 1]"]),
    (EDIT + ["--eta", "-1"], ["--eta", "[0, 1]"]),
    (EDIT + ["--eta", "5"], ["--eta", "[0, 1]"]),
    (EDIT + ["--eta", "x"], ["--eta", "expected a number"]),
    (EDIT + ["--logit", "nan"], ["--logit", "> 0"]),
    (EDIT + ["--logit", "-1"], ["--logit", "> 0"]),
    (EDIT + ["--logit", "0"], ["--logit", "> 0"]),
    (GEN + ["--logit", "inf"], ["--logit", "finite"]),
    (EDIT + ["--max-move", "-1"], ["--max-move", ">= 0"]),
    (EDIT + ["--max-move", "nan"], ["--max-move", "finite"]),
    (EDIT + ["--t-start", "-1"], ["--t-start", "[1, 999]"]),
    (EDIT + ["--t-start", "1000"], ["--t-start", "[1, 999]"]),
    (EDIT + ["--t-start", "abc"], ["--t-start", "integer"]),
    (EDIT + ["--steps", "0"], ["--steps", "[1, 1000]"]),
    (EDIT + ["--steps", "1001"], ["--steps", "[1, 1000]"]),
    (EDIT + ["--n", "0"], ["--n", ">= 1"]),
    (EDIT + ["--n", "-5"], ["--n", ">= 1"]),
    (EDIT + ["--seed", "-1"], ["--seed", ">= 0"]),
    (EDIT + ["--max-abs", "-1"], ["max_abs", "positive"]),
    (EDIT + ["--max-abs", "nan"], ["max_abs", "positive"]),
    (EDIT + ["--max-abs", "inf"], ["max_abs", "finite"]),
    (EDIT + ["--max-abs", "abc"], ["max_abs", "auto"]),
    (GEN + ["--n", "0"], ["--n", ">= 1"]),
    (GEN + ["--travel", "0,2"], ["travel", "length >= 1"]),
    (GEN + ["--travel", "1"], ["travel", "length >= 1"]),
    (GEN + ["--travel", "one,two"], ["travel", "'auto', 'off' or L,R"]),
    (EDIT + ["--keep", "0"], ["--keep", "finite positive logit"]),
    (EDIT + ["--keep", "nan"], ["--keep", "finite positive logit"]),
    (EDIT + ["--keep", "some"], ["--keep", "'auto', 'off' or a positive logit margin"]),
    (EDIT + ["--range-rule", "cut"], ["--range-rule", "'auto', 'halve' or 'clip'"]),
    (GEN + ["--range-rule", "1.5"], ["--range-rule", "'auto', 'halve' or 'clip'"]),
    (EDIT + ["--keep", "2", "--method", "dps"], ["keep", "dps has no bounds"]),
    (REC + ["--skip-tol", "2"], ["--skip-tol", "[0, 1]"]),
    (REC + ["--skip-tol", "-0.1"], ["--skip-tol", "[0, 1]"]),
    (REC + ["--batch", "0"], ["--batch", ">= 1"]),
    (REC + ["--split", "bogus"], ["--split", "invalid choice"]),
    (REC + ["--method", "bogus"], ["--method", "invalid choice"]),
    (REC + ["--pinv", "bogus"], ["--pinv", "invalid choice"]),
    (REC + ["--latent-step", "1.5"], ["--latent-step", "[0, 1]"]),
    (REC + ["--pinv", "natural", "--latent-step", "0.5"], ["--latent-step", "--pinv natural"]),
    (REC + ["--latents-from", "bogus"], ["--latents-from", "invalid choice"]),
    (REC + ["--graphs", "on"], ["--graphs", "invalid choice"]),
    (REC + ["--slack", "-1"], ["--slack"]),
    (REC + ["--method", "dps", "--slack", "0.5"], ["--slack", "--method nlbp"]),
    (REC + ["--pinv", "natural", "--latents-from", "labels"], ["--latents-from labels", "--pinv natural"]),
    (REC + ["--method", "daps", "--travel", "1,1"], ["--travel", "own loop without time travel"]),
    (REC + ["--slack", "wide"], ["--slack", "a number >= 0"]),
    (REC + ["--travel", "0,2"], ["--travel"]),
    (REC + ["--preset", "paper", "--latents-from", "labels"], ["--preset paper", "--preset spnn"]),
    # model paths
    (EDIT + ["--evaluator", "{d}/missing.safetensors"], ["--evaluator", "no such file"]),
    (EDIT + ["--evaluator", "r9"], ["--evaluator", "shipped evaluator (r3, r2, r1, spatial)"]),
    (EDIT + ["--evaluator", ""], ["--evaluator", "empty evaluator"]),
    (["demo", "--evaluator", "r9", "--out", "{out}"], ["--evaluator", "shipped evaluator (r3, r2, r1, spatial)"]),
    (EDIT + ["--spnn", ""], ["--spnn", "empty path"]),
    (EDIT + ["--spnn", "{d}/missing.safetensors"], ["--spnn", "no such file"]),
    (EDIT + ["--prior", "{d}/missing"], ["--prior", "no such file"]),
    (EDIT + ["--spnn", "{d}/images"], ["is a folder", "weights file"]),
    (EDIT + ["--spnn", "{d}/spnn16.safetensors"], ["(3, 16, 16)", "(3, 8, 8)", "same image size"]),
    (EDIT + ["--spnn", "{d}/truncated.safetensors"], ["truncated.safetensors", "truncated"]),
    (EDIT + ["--spnn", "{d}/crafted.safetensors"], ["crafted.safetensors", "do not match"]),
    (EDIT + ["--spnn", "{d}/prior/unet/diffusion_pytorch_model.safetensors"], ["no spnn network description"]),
    (EDIT + ["--prior", "{d}/spnn.safetensors"], ["spnn.safetensors", "checkpoint"]),
    (EDIT + ["--prior", "{d}/images"], ["config.json", "diffusers"]),
    (EDIT + ["--spnn", "{d}/evil.pth"], ["evil.pth", "cannot read checkpoint"]),
    # images
    (EDIT[:-1] + ["{d}/missing.png"], ["missing.png", "no such image"]),
    (EDIT[:-1] + ["{d}/empty"], ["no images in this folder"]),
    (EDIT[:-1] + ["{d}/tiny.png"], ["tiny.png", "1x1", "larger image"]),
    (EDIT[:-1] + ["{d}/text.png"], ["text.png", "cannot read image"]),
    (EDIT[:-1] + ["{d}/bomb.png"], ["bomb.png", "safety limit", "resize"]),
    # output paths, refused before any work
    (EDIT[:-1] + ["--out", "{d}/a_file", "{d}/images"], ["a_file", "is a file", "--out"]),
    (GEN + ["--out", "{d}/a_file"], ["is a file"]),
    (SAMPLE[:-4] + ["--out", "{d}/images"], ["is a folder"]),
    (SAMPLE[:-4] + ["--out", "{out}/s.jpg"], ["PNG"]),
    (["demo", "--out", "{d}/a_file", "--steps", "1", "--n", "1"], ["is a file"]),
    # datasets
    (REC[:-1] + ["--all", "--data", "avatars:abc"], ["avatars:abc", "positive integer"]),
    (REC[:-1] + ["--all", "--data", "folder:{d}/missing"], ["not a folder"]),
    (REC[:-1] + ["--all", "--data", "bogus"], ["unknown dataset", "avatars"]),
    (REC[:-1] + ["--all", "--data", "folder"], ["needs a folder"]),
    (TRAIN + ["--data", "folder:{d}/csv-escape"], ["outside the dataset folder", "../outside.png"]),
    (TRAIN + ["--data", "folder:{d}/csv-absolute"], ["outside the dataset folder", "/etc/hostname"]),
    (TRAIN + ["--data", "folder:{d}/csv-empty"], ["attributes.csv", "empty"]),
    (TRAIN + ["--data", "folder:{d}/csv-headeronly"], ["no rows"]),
    (["data", "avatars", "--n", "10", "--size", "8", "--out", "{d}/cache"], ["corrupt avatar cache", "delete"]),
    # restoration
    (RESTORE + ["--task", "bogus"], ["--task", "invalid choice"]),
    (RESTORE + ["--task", "camera"], ["--emulator"]),
    (RESTORE + ["--task", "sr4", "--no-feedback"], ["--no-feedback", "camera"]),
    (RESTORE + ["--task", "sr4", "--emulator", "{d}/spnn.safetensors"], ["--emulator", "camera only"]),
    (RESTORE + ["--task", "sr4", "--emulator", "{d}/missing"], ["--emulator", "no such file"]),
    # global options
    (["--threads", "-1", *CHECK], ["--threads", ">= 1"]),
    (["--threads", "0", *CHECK], ["--threads", ">= 1"]),
    (["--threads", "x", *CHECK], ["--threads", "integer"]),
    # spnn check / penrose / convert
    (["check", "--input", "3,100000,100000"], ["GiB", "over the limit", "SPNN_MAX_MEMORY_GB"]),
    (["check", "--input", "3.5,8,8"], ["--input", "positive integers"]),
    (["check", "--input", "0,8,8"], ["--input", "positive integers"]),
    (["check", "--input", "abc"], ["--input", "positive integers"]),
    (["check", "--input", "3,8,8", "--output", "1000"], ["not fewer", "smaller output"]),
    (CHECK + ["--n", "0"], ["--n", ">= 1"]),
    (CHECK + ["--hidden", "0"], ["--hidden", ">= 1"]),
    (CHECK + ["--mixing", "bogus"], ["--mixing", "invalid choice"]),
    (["penrose", "{d}/missing.safetensors"], ["no such file"]),
    (["penrose", "{d}/images"], ["is a folder"]),
    (["penrose", "{d}/truncated.safetensors"], ["not a readable safetensors"]),
    (["penrose", "{d}/crafted.safetensors"], ["do not match", "re-save"]),
    (["penrose", "{d}/spnn.safetensors", "--n", "0"], ["--n", ">= 1"]),
    (["convert", "{d}/missing.pth", "{out}/x.safetensors"], ["no such file"]),
    (["convert", "{d}/evil.pth", "{out}/x.safetensors"], ["evil.pth", "cannot read checkpoint"]),
    (["convert", "{d}/spnn.safetensors", "{out}/x.txt"], [".safetensors"]),
    (["convert", "{d}/spnn.safetensors", "{out}/x.safetensors"], ["not an authors'", "already an spnn network"]),
    (["convert", "{d}/spnn.safetensors", "{out}/x.safetensors", "--img-size", "0"], ["--img-size", ">= 1"]),
    # training commands
    (TRAIN + ["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (TRAIN + ["--epochs", "-1"], ["--epochs", "> 0"]),
    (TRAIN + ["--epochs", "nan"], ["--epochs", "finite"]),
    (TRAIN + ["--epochs2", "0"], ["--epochs2", "> 0"]),
    (TRAIN + ["--nproc", "0"], ["--nproc", ">= 1"]),
    (TRAIN + ["--lr", "0"], ["--lr", "(0, 1]"]),
    (TRAIN + ["--lr", "nan"], ["--lr", "finite"]),
    (TRAIN + ["--size", "0"], ["--size", ">= 1"]),
    (TRAIN + ["--n", "-5"], ["--n", ">= 1"]),
    (TRAIN + ["--factor", "1"], ["--factor", "[2, 16]"]),
    (TRAIN + ["--hidden", "0"], ["--hidden", ">= 1"]),
    (TRAIN + ["--max-steps", "0"], ["--max-steps", ">= 1"]),
    (TRAIN + ["--reduction", "1"], ["--reduction", "> 1"]),
    (TRAIN + ["--init", "{d}/missing.safetensors"], ["--init", "no such file"]),
    (TRAIN + ["--config", "{d}/missing.yaml"], ["--config", "no such file"]),
    (TRAIN + ["--config", "{d}/bad.yaml"], ["bad.yaml", "not valid YAML"]),
    (TRAIN + ["--config", "{d}/list.yaml"], ["list.yaml", "mapping"]),
    (TRAIN + ["--config", "{d}/unknown.yaml"], ["unknown training options", "bogus"]),
    (TRAIN + ["--config", "{d}/crossed.yaml"], ["counterfactual_step", "phase-2 option", "phase2 section"]),
    (TRAIN + ["--config", "{d}/judged-missing.yaml"], ["none.safetensors", "no such file"]),
    (TRAIN + ["--config", "{d}/judged-nopath.yaml"], ["judged > 0 needs judged_path"]),
    (TRAIN + ["--config", "{d}/judged-wrong.yaml"], ["judged images", "lacks images, labels, mask"]),
    (TRAIN + ["--phase", "2", "--epochs", "3"], ["--epochs", "phase-1 options with --phase 2", "--epochs2"]),
    (TRAIN + ["--phase", "2", "--lr", "0.1", "--adaptive-weights"], ["--lr, --adaptive-weights", "--phase 2"]),
    (TRAIN + ["--phase", "1", "--epochs2", "3"], ["--epochs2", "phase-2 option with --phase 1"]),
    (TRAIN + ["--init", "{d}/spnn.safetensors", "--hidden", "8"], ["--hidden", "gives the network", "drop them"]),
    (TRAIN + ["--data", "avatars:abc"], ["positive integer"]),
    (TRAIN[:1] + ["--out", "{d}/a_file", "--size", "8", "--n", "40", "--quiet"], ["is a file"]),
    (TRAIN + ["--batch-size", "64"], ["smaller than one batch"]),
    (EVAL + ["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (EVAL + ["--epochs", "0"], ["--epochs", "> 0"]),
    (EVAL + ["--lr", "-1"], ["--lr", "(0, 1]"]),
    (EVAL + ["--widths", "0"], ["--widths", ">= 1"]),
    (["evaluator", "score", "--model", "{d}/missing.safetensors"], ["--model", "no such file"]),
    (["evaluator", "score", "--model", "{d}/spnn.safetensors", "--limit", "0"], ["--limit", ">= 1"]),
    (["evaluator", "score", "--model", "{d}/spnn.safetensors"], ["not an spnn attribute evaluator"]),
    (PRIOR + ["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (PRIOR + ["--ema-decay", "1"], ["--ema-decay", "[0, 1)"]),
    (PRIOR + ["--decay-start", "2"], ["--decay-start", "[0, 1]"]),
    (PRIOR + ["--preset", "huge"], ["--preset", "invalid choice"]),
    (PRIOR + ["--init", "{d}/prior", "--preset", "base"], ["--init", "not the --preset base UNet"]),
    (PRIOR + ["--init", "{d}/missing"], ["--init", "no such file"]),
    (PRIOR + ["--oversample", "Gray_Hair=0"], ["oversample", "NAME=K"]),
    (PRIOR + ["--oversample", "Wings=2"], ["unknown attribute", "Wings"]),
    (TRAIN + ["--oversample", "Bangs+=2"], ["oversample", "NAME+NAME=K"]),
    (TRAIN + ["--oversample", "Bangs+Wings=2"], ["unknown attribute", "Wings"]),
    (["prior", "export", "{d}/missing.safetensors", "--out", "{out}"], ["no such file"]),
    (SAMPLE[:1] + ["--prior", "{d}/missing", "--out", "{out}/s.png"], ["--prior", "no such file"]),
    (SAMPLE + ["--n", "0"], ["--n", ">= 1"]),
    (SAMPLE + ["--per-row", "0"], ["--per-row", ">= 1"]),
    (SAMPLE + ["--scale", "0"], ["--scale", "[1, 16]"]),
    (SAMPLE + ["--eta", "2"], ["--eta", "[0, 1]"]),
    (SAMPLE + ["--steps", "0"], ["--steps", "[1, 1000]"]),
    (["data", "avatars", "--n", "0"], ["--n", ">= 1"]),
    (["data", "avatars", "--size", "0"], ["--size", ">= 1"]),
    (["data", "avatars", "--n", "4", "--size", "8", "--grid", "{d}/images"], ["is a folder"]),
    (["emulator", "train", "--out", "{out}", "--size", "30", "--n", "40", "--quiet"], ["multiple of 4"]),
    (["emulator", "train", "--out", "{out}", "--epochs", "0"], ["--epochs", "> 0"]),
    (["demo", "--steps", "0"], ["--steps", "[1, 1000]"]),
    (["demo", "--n", "0"], ["--n", ">= 1"]),
    (["demo", "--spnn", "{d}/missing.safetensors"], ["--spnn", "no such file"]),
]


def _id(case):
    argv, _ = case
    return " ".join(a.replace("{d}/", "").replace("{out}", "OUT") for a in argv if not a.startswith("{d}/prior"))[:90]


@pytest.mark.parametrize("argv,words", CLI_CASES, ids=[_id(c) for c in CLI_CASES])
def test_cli_refuses_bad_input(files, tmp_path, capsys, monkeypatch, argv, words):
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 5000)  # bomb.png (14,400 px) is over twice the limit
    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    argv = _cli(files, tmp_path)(argv)
    try:
        status = main(argv)
    except SystemExit as e:  # argparse refuses at parse time
        status = e.code
    err = capsys.readouterr().err
    assert status == 2, (status, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    out = tmp_path / "out"
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert written == [], written
    assert not out.exists(), "a refused command left its (empty) output folder behind"
    assert not (files / MARKER).exists()


def test_a_refused_command_keeps_folders_it_did_not_create(files, tmp_path, capsys, monkeypatch):
    """Only folders the failed command made and left empty are removed: an existing one stays, empty or not."""
    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    argv = _cli(files, tmp_path)(PRIOR + ["--oversample", "Wings=2"])  # refused after the output folder check
    (tmp_path / "out").mkdir()
    assert main(argv) == 2 and (tmp_path / "out").is_dir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main(argv) == 2 and (tmp_path / "out" / "notes.txt").read_text() == "mine"
    nested = [a.replace(str(tmp_path / "out"), str(tmp_path / "new" / "deeper")) for a in argv]
    assert main(nested) == 2 and not (tmp_path / "new").exists()  # every level it made goes
    assert "Wings" in capsys.readouterr().err


def test_train_phase2_refuses_network_options_where_phase1_output_gives_the_network(files, tmp_path, capsys):
    import shutil

    argv = _cli(files, tmp_path)(TRAIN + ["--phase", "2", "--hidden", "8"])
    (tmp_path / "out").mkdir()
    shutil.copy(files / "spnn.safetensors", tmp_path / "out" / "phase1.safetensors")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--hidden" in err and "phase1.safetensors gives the network" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["phase1.safetensors"]  # nothing trained


def test_cli_gives_a_traceback_only_when_asked(files, tmp_path, capsys):
    with pytest.raises(DataError):
        main(["--debug", *_cli(files, tmp_path)(EDIT[:-1] + ["{d}/missing.png"])])


# --- resuming training from a folder someone sent you -------------------------------------------------------

def _tiny_loop(out, batch_size=8):
    from torch.utils.data import TensorDataset

    from spnn.training.loop import LoopConfig, TrainLoop

    model = torch.nn.Linear(2, 1)
    data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
    loss = lambda b: (torch.nn.functional.mse_loss(model(b[0]), b[1]), {})

    def save(path, meta):
        from spnn.io import save_tensors

        save_tensors(path, model.state_dict(), meta)

    def load(path):
        from spnn.io import load_tensors

        model.load_state_dict(load_tensors(path)[0])

    cfg = LoopConfig(epochs=2, batch_size=batch_size, warmup=1, log_every=1, ckpt_every=1)
    return TrainLoop(cfg, list(model.parameters()), loss, data, out, save, load)


def test_resume_refuses_a_pickle_that_would_run_code(tmp_path):
    loop = _tiny_loop(tmp_path)
    loop.run(progress=False)
    (tmp_path / "last.state.safetensors").unlink()
    marker = tmp_path / MARKER
    with open(tmp_path / "last.state.pt", "wb") as f:
        pickle.dump({"step": _Evil(str(marker))}, f)
    with pytest.raises(CheckpointError, match="could run code"):
        _tiny_loop(tmp_path).run(progress=False)
    assert not marker.exists()


def test_resume_state_has_no_pickle_and_resumes(tmp_path):
    loop = _tiny_loop(tmp_path)
    loop.cfg.max_steps = 2
    loop.run(progress=False)
    assert not list(tmp_path.glob("*.pt"))
    with open(tmp_path / "last.state.safetensors", "rb") as f:  # a safetensors file: 8-byte header length, JSON
        n = struct.unpack("<Q", f.read(8))[0]
        json.loads(f.read(n))
    again = _tiny_loop(tmp_path)
    assert again.resume() and again.step == 2


def test_resume_refuses_changed_batch_size_and_orphan_weights(tmp_path):
    loop = _tiny_loop(tmp_path)
    loop.cfg.max_steps = 1
    loop.run(progress=False)
    with pytest.raises(CheckpointError, match="batch_size 8 -> 4"):
        _tiny_loop(tmp_path, batch_size=4).run(progress=False)
    (tmp_path / "last.state.safetensors").unlink()
    with pytest.raises(CheckpointError, match="training state"):
        _tiny_loop(tmp_path).run(progress=False)


# --- the Python API -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api():
    torch.manual_seed(0)
    net = perturb_(SPNN.build((3, 8, 8), (4,), hidden=8, attribute_names=["A", "B", "C", "D"]), 0.1).eval()
    prior = Prior(build_unet(8, block_out_channels=(8, 8, 8), norm_num_groups=4))
    return net, prior


def _x(n=2):
    return torch.rand(n, 3, 8, 8) * 2 - 1


def _api_cases():
    from spnn import tasks
    from spnn.backproject import nlbp
    from spnn.diffusion.sampler import sample
    from spnn.diffusion.schedule import ddim_timesteps
    from spnn.operators import SPNNOperator

    nan_x = _x().index_put_((torch.tensor([0]),), torch.tensor(float("nan")))
    y = torch.randn(2, 4)
    cases = [
        ("nlbp lam 2", lambda n, p: nlbp(n, _x(), y, lam=2), ConfigError, "[0, 1]"),
        ("nlbp lam -1", lambda n, p: nlbp(n, _x(), y, lam=-1), ConfigError, "[0, 1]"),
        ("nlbp lam nan", lambda n, p: nlbp(n, _x(), y, lam=float("nan")), ConfigError, "[0, 1]"),
        ("nlbp lam inf", lambda n, p: nlbp(n, _x(), y, lam=float("inf")), ConfigError, "[0, 1]"),
        ("nlbp lam tensor", lambda n, p: nlbp(n, _x(), y, lam=torch.tensor([0.5, 1.5])), ConfigError, "[0, 1]"),
        ("nlbp lam string", lambda n, p: nlbp(n, _x(), y, lam="a"), ConfigError, "number"),
        ("nlbp lam count", lambda n, p: nlbp(n, _x(), y, lam=torch.tensor([0.5, 0.5, 0.5])), ShapeError,
         "per sample"),
        ("nlbp float mask", lambda n, p: nlbp(n, _x(), y, mask=torch.full((4,), 0.5)), ConfigError, "boolean"),
        ("nlbp batch mismatch", lambda n, p: nlbp(n, _x(3), y), ShapeError, "3 samples"),
        ("nlbp y nan", lambda n, p: nlbp(n, _x(), torch.full((2, 4), float("nan"))), ShapeError, "NaN"),
        ("nlbp y list", lambda n, p: nlbp(n, _x(), [[0.0] * 4] * 2), ShapeError, "torch.Tensor"),
        ("nlbp x float64", lambda n, p: nlbp(n, _x().double(), y), ShapeError, "x.float()"),
        ("nlbp x nan", lambda n, p: nlbp(n, nan_x, y), ShapeError, "NaN"),
        ("net x nan", lambda n, p: n(nan_x), ShapeError, "NaN"),
        ("net x inf", lambda n, p: n(_x() / 0), ShapeError, "NaN/inf"),
        ("net x uint8", lambda n, p: n(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)), ShapeError, "127.5"),
        ("net x float64", lambda n, p: n(_x().double()), ShapeError, "x.float()"),
        ("net x no batch", lambda n, p: n(_x()[0]), ShapeError, "unsqueeze"),
        ("net x channels", lambda n, p: n(torch.zeros(2, 1, 8, 8)), ShapeError, "channel"),
        ("pinv y nan", lambda n, p: n.pinv(torch.full((2, 4), float("nan"))), ShapeError, "NaN"),
        ("pinv y shape", lambda n, p: n.pinv(torch.zeros(2, 5)), ShapeError, "(batch, 4)"),
        ("pinv mode", lambda n, p: n.pinv(y, mode="bogus"), ConfigError, "learned"),
        ("inverse latents", lambda n, p: n.inverse(y, []), Exception, ""),
        ("build 3.5", lambda n, p: SPNN.build((3.5, 8, 8), (4,)), LayoutError, "positive integers"),
        ("build 0", lambda n, p: SPNN.build((0, 8, 8), (4,)), LayoutError, "positive integers"),
        ("build -1", lambda n, p: SPNN.build((3, 8, 8), (-1,)), LayoutError, "positive integers"),
        ("build str", lambda n, p: SPNN.build(("3", 8, 8), (4,)), LayoutError, "positive integers"),
        ("build bool", lambda n, p: SPNN.build((True, 8, 8), (4,)), LayoutError, "positive integers"),
        ("build too big out", lambda n, p: SPNN.build((3, 8, 8), (500,)), LayoutError, ""),
        ("penrose empty", lambda n, p: penrose_report(n, torch.zeros(0, 3, 8, 8)), ShapeError, "empty"),
        ("reconstruct 0..255", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), torch.rand(1, 3, 8, 8) * 255,
                                                             steps=2), ShapeError, "127.5"),
        ("reconstruct uint8", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), torch.zeros(1, 3, 8, 8,
                                                            dtype=torch.uint8), steps=2), ShapeError, "127.5"),
        ("reconstruct nan", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), nan_x, steps=2), ShapeError, "NaN"),
        ("reconstruct 3-dim", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x()[0], steps=2), ShapeError,
         "unsqueeze"),
        ("reconstruct size", lambda n, p: tasks.reconstruct(p, SPNNOperator(SPNN.build((3, 16, 16), (4,), hidden=4)),
                                                            torch.zeros(1, 3, 16, 16), steps=2), ConfigError,
         "same image size"),
        ("reconstruct empty", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x()[:0], steps=2), ShapeError,
         "empty"),
        ("reconstruct steps 0", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), steps=0), ConfigError,
         "steps"),
        ("reconstruct seeds", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), steps=2, seeds=[1]),
         ConfigError, "seeds"),
        ("reconstruct method", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), method="bogus"),
         ConfigError, "nlbp"),
        ("reconstruct slack with a solver", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), method="daps",
                                                                            slack=0.5, steps=2),
         ConfigError, "slack loosens NLBP's target"),
        ("reconstruct slack with dps", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), method="dps",
                                                                       slack=0.5, steps=2),
         ConfigError, "method='nlbp' or drop slack"),
        ("edit value 0.5", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 0.5}, steps=2), ConfigError,
         "1 (on)"),
        ("edit range rule cut", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, range_rule="cut",
                                                         steps=2), ConfigError, "'auto', 'halve' or 'clip'"),
        ("generate range rule with cg", lambda n, p: tasks.generate(p, SPNNOperator(n), {"A": 1}, 1, method="cg",
                                                                     range_rule="clip", steps=2),
         ConfigError, "cg has none"),
        ("edit unknown", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"Z": 1}, steps=2), DataError,
         "unknown attribute"),
        ("edit empty", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {}, steps=2), ConfigError, "non-empty"),
        ("edit logit -1", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, logit=-1, steps=2),
         ConfigError, "positive"),
        ("edit logit nan", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, logit=float("nan")),
         ConfigError, "positive"),
        ("edit t_start -1", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, t_start=-1, steps=2),
         ConfigError, "t_start"),
        ("edit t_start 1000", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, t_start=1000, steps=2),
         ConfigError, "t_start"),
        ("edit eta 2", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, eta=2.0, steps=2), ConfigError,
         "eta"),
        ("edit max_abs -1", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, max_abs=-1), ConfigError,
         "max_abs"),
        ("generate n 0", lambda n, p: tasks.generate(p, SPNNOperator(n), {"A": 1}, 0, steps=2), ConfigError,
         "at least one"),
        ("generate n 1.5", lambda n, p: tasks.generate(p, SPNNOperator(n), {"A": 1}, 1.5, steps=2), ConfigError,
         "positive integer"),
        ("sample eta -1", lambda n, p: sample(p, 1, steps=2, eta=-1), ConfigError, "eta"),
        ("sample graphs", lambda n, p: sample(p, 1, steps=2, graphs="always"), ConfigError, "graphs setting"),
        ("edit graphs", lambda n, p: tasks.edit(p, SPNNOperator(n), _x(), {"A": 1}, graphs="yes"), ConfigError,
         "graphs setting"),
        ("reconstruct graphs", lambda n, p: tasks.reconstruct(p, SPNNOperator(n), _x(), graphs=1), ConfigError,
         "graphs setting"),
        ("sample n 0", lambda n, p: sample(p, 0, steps=2), ConfigError, "at least one"),
        ("sample x_start alone", lambda n, p: sample(p, 2, steps=2, x_start=_x()), ConfigError, "t_start"),
        ("sample invert alone", lambda n, p: sample(p, 2, steps=2, invert=True), ConfigError, ""),
        ("schedule steps 0", lambda n, p: ddim_timesteps(1000, 0), ConfigError, "1..1000"),
        ("operator mode", lambda n, p: SPNNOperator(n, mode="bogus"), ConfigError, "learned"),
    ]
    return cases


API_CASES = _api_cases()


@pytest.mark.parametrize("name,call,exc,words", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_refuses_bad_input(api, name, call, exc, words):
    net, prior = api
    with pytest.raises(exc) as info:
        call(net, prior)
    assert words.lower() in str(info.value).lower()


def test_enough_bad_inputs_are_tabled():
    assert len(CLI_CASES) + len(API_CASES) >= 100


# --- inputs that are valid and must be handled right ---------------------------------------------------------

def test_16bit_png_keeps_its_grey_level(tmp_path):
    from spnn.data.real import load_image

    a = np.full((16, 16), 32768, np.uint16)  # mid grey in 16 bits
    Image.fromarray(a).save(tmp_path / "g16.png")
    got = load_image(tmp_path / "g16.png", 8)
    assert abs(int(got.mean()) - 128) <= 1, got.mean()


def test_csv_with_utf8_bom_and_webp_files(tmp_path):
    from spnn.data.real import ImageFolderCSV

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(tmp_path / f"{i}.webp", lossless=True)
    rows = "".join(f"{i}.webp,{i % 2}\n" for i in range(3))
    (tmp_path / "attributes.csv").write_bytes(("\ufefffilename,Smiling\n" + rows).encode("utf-8"))
    ds = ImageFolderCSV(tmp_path, split=None, size=8)
    assert len(ds) == 3 and ds.attribute_names == ["Smiling"]
    assert abs(float(ds[2][0].mean()) - (100 / 127.5 - 1)) < 1e-2


def test_float64_network_loads_in_float64(tmp_path):
    net = SPNN.build((3, 8, 8), (4,), hidden=4).double()
    net.save(tmp_path / "n.safetensors")
    back = SPNN.load(tmp_path / "n.safetensors")
    assert next(back.parameters()).dtype == torch.float64


def test_crafted_description_is_refused_before_allocation(files):
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(CheckpointError, match="do not match"):
        SPNN.load(files / "crafted.safetensors")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20, peak  # the description asks for gigabytes


def test_reconstruct_all_redoes_empty_png(files, tmp_path, monkeypatch):
    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "rec"
    (out / "images").mkdir(parents=True)
    (out / "images" / "00000.png").write_bytes(b"")  # the one test face of 10
    argv = ["reconstruct", "--all", "--prior", str(files / "prior"), "--spnn", str(files / "spnn.safetensors"),
            "--evaluator", "none", "--out", str(out), "--steps", "1", "--data-n", "10", "--cpu"]
    assert main(argv) == 0
    assert os.path.getsize(out / "images" / "00000.png") > 0

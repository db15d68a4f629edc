"""Every task command end to end on tiny random models (a smoke test, and consistency where exact)."""

import json

import numpy as np
import pytest
from PIL import Image

from spnn import SPNN
from spnn.cli.main import main
from spnn.data.avatars import AVATAR_ATTRIBUTES
from spnn.testing import perturb_, write_tiny_models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = write_tiny_models(tmp_path_factory.mktemp("models"))  # with the shipped SPNN's edit calibration
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return root


def _run(models, tmp_path, *argv):
    common = ["--prior", str(models / "prior"), "--evaluator", "none", "--steps", "4", "--out", str(tmp_path)]
    assert main([*argv, *common]) == 0


@pytest.mark.parametrize("method", ["nlbp", "nlbp --latent-step 0.2", "nlbp --latents-from labels --slack 0.5",
                                    "nlbp --latents-from labels --slack 0.5 --travel 1,1", "dps", "cg", "none"])
def test_reconstruct(models, tmp_path, method):
    _run(models, tmp_path, "reconstruct", str(models / "images"), "--spnn", str(models / "spnn.safetensors"),
         "--method", *method.split())
    report = json.loads((tmp_path / "reconstruct.json").read_text())
    assert (tmp_path / "reconstruct.png").exists() and report["n"] == 3
    if method.startswith("nlbp"):
        assert report["consistency_max_abs"] < 1e-4
    assert report["travel"] == ([1, 1] if "--travel" in method else None)  # the tiny SPNN stores no recipe
    assert report["slack"] == (0.5 if "--slack" in method else None) and report["recipe_steps"] is None


def test_reconstruct_takes_the_stored_recipe_with_latents_from_the_labels(models, tmp_path, capsys):
    net = SPNN.load(models / "spnn.safetensors")
    net.edit_calibration = {**net.edit_calibration,
                            "reconstruction_recipes": {"4": {"slack": 0.5, "travel": [1, 1]}}}
    net.save(tmp_path / "recipe.safetensors")
    base = ["reconstruct", str(models / "images"), "--spnn", str(tmp_path / "recipe.safetensors")]
    for extra, expected in [(["--latents-from", "labels"], (0.5, [1, 1], 4)),
                            (["--latents-from", "labels", "--travel", "off"], (0.5, None, 4)),
                            (["--latents-from", "labels", "--slack", "off", "--travel", "2,1"], (None, [2, 1], None)),
                            ([], (None, None, None))]:  # latents from the logits: no recipe measured there
        _run(models, tmp_path / "out", *base, *extra)
        report = json.loads((tmp_path / "out" / "reconstruct.json").read_text())
        assert (report["slack"], report["travel"], report["recipe_steps"]) == expected, extra
        assert report["consistency_max_abs"] < 1e-4
    capsys.readouterr()
    assert main([*base, "--method", "daps", "--travel", "1,1", "--out", str(tmp_path / "bad")]) == 2
    assert main([*base, "--method", "dps", "--slack", "0.5", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--method daps has its own loop without time travel" in err and "--slack loosens" in err
    assert "Traceback" not in err and not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        main([*base, "--slack", "wide"])
    assert "slack must be 'auto', 'off' or a number >= 0, got 'wide'" in capsys.readouterr().err


def test_generate_and_unknown_attribute(models, tmp_path, capsys):
    _run(models, tmp_path, "generate", "--spnn", str(models / "spnn.safetensors"), "--set", "Eyeglasses=1",
         "Smiling=0", "--n", "2", "--max-abs", "0")
    assert json.loads((tmp_path / "generate.json").read_text())["constraint_violation_max"] < 1e-4
    _run(models, tmp_path, "generate", "--spnn", str(models / "spnn.safetensors"), "--set", "Eyeglasses=1",
         "--n", "2", "--max-abs", "1.5")
    assert json.loads((tmp_path / "generate.json").read_text())["pixel_max_abs"] <= 1.5
    code = main(["generate", "--spnn", str(models / "spnn.safetensors"), "--prior", str(models / "prior"),
                 "--evaluator", "none", "--steps", "2", "--out", str(tmp_path), "--set", "Glasses=1"])
    assert code == 2
    with pytest.raises(SystemExit):  # argparse: "max_abs must be 'auto', a positive number or 0 (off)"
        main(["generate", "--set", "Eyeglasses=1", "--max-abs", "wide"])
    assert "max_abs must be 'auto'" in capsys.readouterr().err


@pytest.mark.parametrize("start", [[], ["--no-invert", "--eta", "0.85"]])
def test_edit(models, tmp_path, start):
    _run(models, tmp_path, "edit", str(models / "images" / "0.png"), "--spnn", str(models / "spnn.safetensors"),
         "--set", "Bald=1", "--t-start", "300", "--max-abs", "0", *start)
    report = json.loads((tmp_path / "edit.json").read_text())
    assert report["constraint_violation_max"] < 1e-4 and report["invert"] == (not start)


def test_edit_in_a_region_and_a_bad_region(models, tmp_path, capsys):
    _run(models, tmp_path, "edit", str(models / "images"), "--spnn", str(models / "spnn.safetensors"),
         "--set", "Bald=1", "--t-start", "300", "--max-abs", "0", "--region", "0.8")  # a random SPNN moves most pixels
    report = json.loads((tmp_path / "edit.json").read_text())
    assert 0 < report["region_area"] < 1 and report["constraint_violation_max"] < 1e-4
    with pytest.raises(SystemExit):
        main(["edit", "--set", "Bald=1", "--region", "2", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert "region must be 'auto', 'off' or a fraction in (0, 1), got '2'" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_edit_reports_unmet_bounds(models, tmp_path, capsys):
    # a logit of 1e4 is out of reach inside the image range: one NLBP step from each image goes far outside it,
    # so by default (--max-abs auto) the images come back unedited, and the report says so
    args = [str(models / "images"), "--spnn", str(models / "spnn.safetensors"), "--set", "Bald=1", "--t-start", "300"]
    _run(models, tmp_path, "edit", *args, "--logit", "1e4")
    report = json.loads((tmp_path / "edit.json").read_text())
    assert report["bounds_met"] == "0/3" and report["constraint_violation_max"] > 1e3
    assert report["unedited"] == "3/3" and report["reach_max"] > 100 and report["pixel_max_abs"] <= 1.0
    err = capsys.readouterr().err
    assert "3 of 3 images are returned unedited" in err and "not met" not in err
    # a fixed safeguard edits them anyway: the safeguard keeps the images in range, the bounds stay unmet
    _run(models, tmp_path, "edit", *args, "--logit", "1e4", "--max-abs", "1.2")
    report = json.loads((tmp_path / "edit.json").read_text())
    assert report["bounds_met"] == "0/3" and "unedited" not in report and report["pixel_max_abs"] <= 1.2
    assert "not met on 3 of the 3 edited images" in capsys.readouterr().err
    _run(models, tmp_path, "edit", *args, "--max-abs", "0")  # exact bounds
    assert json.loads((tmp_path / "edit.json").read_text())["bounds_met"] == "3/3"
    assert "not met" not in capsys.readouterr().err


@pytest.mark.parametrize("task", ["sr4", "inpaint", "colorize"])
def test_restore(models, tmp_path, task):
    _run(models, tmp_path, "restore", str(models / "images"), "--task", task)
    report = json.loads((tmp_path / f"restore-{task}.json").read_text())
    assert report["consistency_max_abs"] < 1e-5


def test_sample_command(models, tmp_path):
    assert main(["sample", "--prior", str(models / "prior"), "--n", "2", "--steps", "3",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").exists()


@pytest.mark.parametrize("task", ["tone-sr4", "log-sr4"])
def test_restore_nonlinear_exact(models, tmp_path, task):
    _run(models, tmp_path, "restore", str(models / "images"), "--task", task)
    assert json.loads((tmp_path / f"restore-{task}.json").read_text())["consistency_max_abs"] < 1e-4


def test_restore_camera_needs_emulator(models, tmp_path):
    code = main(["restore", str(models / "images"), "--task", "camera", "--prior", str(models / "prior"),
                 "--evaluator", "none", "--steps", "2", "--out", str(tmp_path)])
    assert code == 2


@pytest.mark.parametrize("method", ["nlbp", "nlbp --no-feedback", "dps"])
def test_restore_camera_with_emulator(models, tmp_path, method):
    emulator = perturb_(SPNN.build((3, 8, 8), (3, 2, 2), hidden=4), 0.1)
    emulator.save(tmp_path / "emu.safetensors")
    _run(models, tmp_path, "restore", str(models / "images"), "--task", "camera", "--emulator",
         str(tmp_path / "emu.safetensors"), "--method", *method.split())
    assert (tmp_path / "restore-camera.png").exists()


def test_reconstruct_all_is_sharded_and_resumable(models, tmp_path, monkeypatch):
    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    args = ["reconstruct", "--all", "--data", "avatars:8", "--data-n", "40", "--spnn", str(models / "spnn.safetensors"),
            "--batch", "3"]
    _run(models, tmp_path, *args)
    files = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert files == [f"{i:05d}.png" for i in range(4)]
    stamp = (tmp_path / "images" / "00001.png").stat().st_mtime_ns
    (tmp_path / "images" / "00002.png").unlink()
    _run(models, tmp_path, *args)  # only the missing one is redone
    assert (tmp_path / "images" / "00001.png").stat().st_mtime_ns == stamp
    assert (tmp_path / "images" / "00002.png").exists()


def test_calibration_travels_with_the_network(tmp_path, capsys, monkeypatch):
    """`spnn calibrate` measures the editing numbers and stores them next to the weights; an uncalibrated SPNN
    edits with the generic values and says so."""
    import warnings

    from spnn.calibration import UNCALIBRATED, calibrate_edits, calibration_of
    from spnn.data.avatars import AvatarFaces
    from spnn.models import DEFAULT_SPNN, load_spnn
    from spnn.operators import SPNNOperator

    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    shipped_net = load_spnn()
    shipped = calibration_of(shipped_net)  # the numbers `spnn calibrate` measured for it (200 val faces)
    # ... under the labels it was trained and calibrated with (revision 3, the default: the parts drawn)
    x, labels = AvatarFaces.head("val", 200, size=32, n=30000).tensors(limit=200)
    measured = calibrate_edits(SPNNOperator(shipped_net), x, labels)
    assert (shipped.logit, shipped.reach_limit, shipped.reach_max) == pytest.approx(
        (measured.logit, measured.reach_limit, measured.reach_max), abs=0.01)
    net = SPNN.build((3, 8, 8), (22,), hidden=4, attribute_names=AVATAR_ATTRIBUTES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert calibration_of(net) is UNCALIBRATED
    assert any("no edit calibration" in str(w.message) for w in caught)
    out = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--spnn", str(DEFAULT_SPNN), "--n", "40", "--data-n", "400", "--out", str(out),
                 "--cpu"]) == 0
    captured = capsys.readouterr()
    measured = json.loads(captured.out.strip().splitlines()[-1])
    again = calibration_of(SPNN.load(out))
    assert again.logit == measured["logit"] and 1.0 <= again.logit <= 8.0
    assert 1.0 < again.reach_limit < again.reach_max
    # what calibrate does not measure (the stored start and levels, chosen by benchmarks) is kept, and said
    assert again.starts == shipped.starts and again.levels == shipped.levels and again.starts
    assert again.keeps == shipped.keeps and again.keeps and again.generation_travel == shipped.generation_travel
    assert again.range_rules == shipped.range_rules and shipped.range_rules["Gray_Hair"] == "clip"
    assert "kept what spnn calibrate does not measure" in captured.err and "starts" in captured.err
    assert "keeps" in captured.err and "generation_travel" in captured.err and "range_rules" in captured.err
    assert again.implied_levels == shipped.implied_levels and again.implied_levels and "implied_levels" in captured.err
    assert again.reconstruction_recipes == shipped.reconstruction_recipes and again.reconstruction_recipes


def test_calibrate_keeps_the_stored_choices_of_another_spnn(tmp_path, capsys, monkeypatch):
    """A fine-tuned SPNN has no calibration; --keep-from takes the benchmark-chosen settings from the SPNN it came
    from, and refuses one without a calibration."""
    from spnn.calibration import calibration_of
    from spnn.models import DEFAULT_SPNN, load_spnn

    monkeypatch.setenv("SPNN_CACHE", str(tmp_path / "cache"))
    bare = load_spnn()
    shipped = calibration_of(bare)
    bare.edit_calibration = None  # what training writes: no calibration
    bare.save(tmp_path / "bare.safetensors", {})
    out = tmp_path / "calibrated.safetensors"
    argv = ["calibrate", "--spnn", str(tmp_path / "bare.safetensors"), "--n", "40", "--data-n", "400", "--out",
            str(out), "--cpu"]
    assert main(argv) == 0
    plain = calibration_of(SPNN.load(out))
    assert plain.starts == {} and plain.levels == {} and plain.keeps == {} and plain.range_rules == {}
    assert plain.implied_levels == {}
    assert main([*argv, "--keep-from", str(DEFAULT_SPNN)]) == 0
    kept = calibration_of(SPNN.load(out))
    assert (kept.starts, kept.levels, kept.keeps, kept.range_rules) == (
        shipped.starts, shipped.levels, shipped.keeps, shipped.range_rules) and kept.levels and kept.range_rules
    assert kept.implied_levels == shipped.implied_levels and kept.implied_levels
    assert kept.logit == plain.logit  # measured on this SPNN, not taken
    assert f"kept from {DEFAULT_SPNN}: starts" in kept.source  # the file named, not "the input SPNN"
    assert f"as {DEFAULT_SPNN} stored it" in capsys.readouterr().err
    assert main([*argv, "--keep-from", str(tmp_path / "bare.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--keep-from" in err and "no editing calibration" in err


@pytest.mark.parametrize("argv", [
    ["reconstruct", "--method", "red-diff", "--steps", "3"],
    ["restore", "--task", "sr4", "--method", "daps", "--steps", "2"],
    ["reconstruct", "--precision", "bfloat16", "--steps", "2"],
    ["edit", "--set", "Eyeglasses=1", "--graphs", "off", "--steps", "2"],
    ["reconstruct", "--method", "dps-paper", "--steps", "2"],
])
def test_other_solvers_and_precisions_from_the_cli(models, tmp_path, argv):
    spnn = [] if argv[0] == "restore" else ["--spnn", str(models / "spnn.safetensors")]
    _run(models, tmp_path, argv[0], str(models / "images"), *spnn, *argv[1:])
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert report


def test_daps_divergence_is_an_error(models, tmp_path, capsys):
    """DAPS's default step (tuned for images and tau 0.01) diverges on a steep operator: a one-line error."""
    argv = ["reconstruct", str(models / "images"), "--spnn", str(models / "spnn.safetensors"), "--method", "daps",
            "--prior", str(models / "prior"), "--evaluator", "none", "--steps", "2", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "DAPS diverged" in capsys.readouterr().err


def test_daps_refused_for_editing(models, tmp_path, capsys):
    argv = ["edit", str(models / "images"), "--spnn", str(models / "spnn.safetensors"), "--method", "daps",
            "--set", "Eyeglasses=1", "--prior", str(models / "prior"), "--evaluator", "none", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "reconstruct or restore" in capsys.readouterr().err

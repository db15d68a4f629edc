"""The benchmark scripts run end to end on a tiny configuration (shipped models, a few faces, two steps) and
write their JSON: they are not imported by the package, so nothing else would notice when one breaks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "benchmarks"


def _run(script: str, tmp_path, *args) -> dict:
    env = {**os.environ, "SPNN_BENCH_RESULTS": str(tmp_path), "SPNN_CACHE": str(tmp_path / "cache"),
           "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, str(BENCH / script), *args, "--name", "smoke"], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((tmp_path / "smoke.json").read_text())


def test_speed_benchmark(tmp_path):
    result = _run("speed.py", tmp_path, "--steps", "2", "--repeats", "1", "--batches", "1", "--no-memory")
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) >= {"none", "floor-learned", "nlbp-learned", "nlbp-natural", "dps", "cg"}
    assert all(r["seconds"] > 0 for r in rows.values())


@pytest.mark.parametrize("extra", [[], ["--max-abs", "1.5", "--logit", "3", "--identity"]], ids=["default", "options"])
def test_quality_benchmark(tmp_path, extra):
    result = _run("quality.py", tmp_path, "--n", "4", "--n-edit", "4", "--steps", "2", "--batch", "4", "--data-n", "60",
                  "--methods", "nlbp-learned", "dps", "--edits", "Eyeglasses", "--multi", "Eyeglasses", "Smiling",
                  *extra)
    rec = {r["method"]: r for r in result["reconstruction"]}
    assert rec["nlbp-learned"]["consistency_mae"] < 1e-3 < rec["dps"]["consistency_mae"]
    # g(x) = y to float32 accumulation through the SPNN: 1e-5 on most runs, 4.4e-4 on some memory layouts of the same
    # 2-step run (5 of 40 environment paddings, float32 and bfloat16 alike: alignment-dependent rounding); #19's 1e-4
    # is a 20-step figure (quality-precision-*: 1.5e-5 over 200 faces)
    assert rec["nlbp-learned"]["consistency_max"] <= 1e-3 < rec["dps"]["consistency_max"]
    assert [r["attribute"] for r in result["editing"]] == ["Eyeglasses", "(no edit)"]
    assert 0 <= result["editing"][0]["success"] <= 1 and result["multi_attribute"][0]["n"] == 4
    # what real faces of the split with the target score (None where the tiny split has none)
    assert result["editing"][0]["success_real"] is None or 0 <= result["editing"][0]["success_real"] <= 1
    assert "all_set_real" in result["multi_attribute"][0]
    # the same faces edited perfectly by the generator, read by the same judge
    assert 0 <= result["editing"][0]["success_ideal"] <= 1 and 0 <= result["editing"][0]["others_kept_ideal"] <= 1
    from spnn.calibration import calibration_of
    from spnn.models import load_spnn

    assert result["edit_logit"] == (3.0 if extra else calibration_of(load_spnn()).logit)  # default: the SPNN's own
    assert result["edit_calibration"] == calibration_of(load_spnn()).to_dict()
    if "--identity" in extra:  # each method, then a random real face with the original's labels
        assert [r["method"] for r in result["identity"]] == ["nlbp-learned", "dps", "(real, same labels)"]
        for r in result["identity"][:2]:
            assert 0 <= r["own_nearest_pixels"] <= 1 and r["agreement"] == rec[r["method"]]["agreement"]


def test_judge_spread_benchmark(tmp_path):
    result = _run("judge_spread.py", tmp_path, "--judges", "r3", "r1", "--n", "4", "--steps", "2", "--data-n", "60")
    assert [r["judge"] for r in result["rows"]] == ["r3", "r1"] and result["n"] == 4
    for row in result["rows"]:
        assert all(0 <= row[f"{a} {m}"] <= 1 for a in result["edits"] for m in ("success", "kept"))


def test_identity_tradeoff_benchmark(tmp_path):
    result = _run("identity_tradeoff.py", tmp_path, "--n", "4", "--steps", "2", "--batch", "4", "--data-n", "600",
                  "--latent-steps", "1", "0.5", "--plot", str(tmp_path / "curve.png"))
    rows = result["rows"]
    assert [(r["spnn"], r["method"]) for r in rows] == [("shipped", "nlbp-learned"), ("shipped", "nlbp-learned@0.5"),
                                                        ("shipped", "nlbp-natural"), ("", "(real, same labels)")]
    assert all(0 <= r["own_nearest_pixels"] <= 1 and 0 <= r["agreement"] <= 1 for r in rows[:3])
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_counterfactual_decoding_benchmark(tmp_path):
    result = _run("counterfactual_decoding.py", tmp_path, "--n", "6", "--data-n", "60", "--columns", "3",
                  "--grid", str(tmp_path / "grid.png"))
    rows = {r["changed"]: r for r in result["rows"]}
    assert rows["all"]["n"] == 6 == sum(r["n"] for k, r in rows.items() if k != "all")
    assert all(r["mse_original"] > 0 and r["ratio"] >= 0 and 0 <= r["evaluator_agrees_with_b"] <= 1
               and 0 <= r["flipped_attributes_shown"] <= 1 for r in rows.values())
    assert all(r["step_ratio"] >= 0 and 0 <= r["step_agrees_with_b"] <= 1 and 0 <= r["step_flipped_shown"] <= 1
               for r in rows.values())
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_level_sets_benchmark(tmp_path):
    result = _run("level_sets.py", tmp_path, "--attributes", "Eyeglasses", "--n", "2", "--iters", "3",
                  "--data-n", "60", "--grid", str(tmp_path / "grid.png"))
    rows = {r["image"]: r for r in result["rows"]}
    assert set(rows) == {"nlbp", "nearest"} and (tmp_path / "grid.png").exists()
    for r in rows.values():  # both images meet the raised logit (max(y_i, level)) exactly: only the latents differ
        assert r["logit"] >= result["logit"] - 1e-3


def test_evaluator_casts_benchmark(tmp_path):
    result = _run("evaluator_casts.py", tmp_path, "--n", "6", "--data-n", "60", "--strengths", "0.3")
    rows = result["rows"]
    assert [r["cast"] for r in rows] == ["none", "blue", "red", "green", "yellow", "dark", "bright"]
    assert all(0 <= r["agreement"] <= 1 for r in rows) and all(-1 <= r["rise"] <= 1 for r in rows[1:])


def test_generation_benchmark(tmp_path):
    result = _run("generation.py", tmp_path, "--travels", "off", "1,1", "--n", "2", "--steps", "3", "--batch", "2",
                  "--evaluator", "r1")
    rows = result["rows"]
    assert [r["travel"] for r in rows] == ["off", "1,1"] and result["seed"] == 40000 and result["evaluator"] == "r1"
    for r in rows:
        sets = [v for k, v in r.items() if "+" in k]
        assert len(sets) == 3 and all(0 <= v <= 1 for v in sets) and r["mean"] == sum(sets) / 3 and r["s_per_image"] > 0
    assert [r["unet_calls"] for r in rows] == [3, 4]  # 3 steps; travel 1,1 denoises the first step again


def test_edit_trajectory_benchmark(tmp_path):
    result = _run("edit_trajectory.py", tmp_path, "--attribute", "Eyeglasses", "--n", "4", "--steps", "4",
                  "--range-rule", "clip")
    rows = result["trajectory"]
    assert result["range_rule_used"] == "clip" and 1 <= result["faces"] <= 4 and 0 <= result["success"] <= 1
    ts = [r["t"] for r in rows]
    assert ts == sorted(ts, reverse=True) and ts[-1] == 0 and ts[0] == 500  # one row per projection, from the start
    assert set(rows[0]) == {"t"} | {f"{k}_{g}" for k in ("logit_before", "logit_after", "rms_step", "max_abs")
                                    for g in ("fail", "success")}


@pytest.mark.parametrize("by", ["hair_colour", "mouth"])
def test_edit_groups_benchmark(tmp_path, by):
    result = _run("edit_groups.py", tmp_path, "--attribute", "Eyeglasses", "--n", "6", "--real-n", "40", "--steps", "2",
                  "--group-by", by)
    rows = result["rows"]
    assert result["evaluator"] == "r3"  # the default judge, by name
    groups = {"hair_colour": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Red_Hair", "none"],
              "mouth": ["Mouth_Slightly_Open", "closed"]}[by]
    assert [r[by] for r in rows] == groups
    assert sum(r["faces"] for r in rows) == result["faces"] >= 1  # every edited face in one group
    for r in rows:
        assert (r["success"] == "") == (r["faces"] == 0) and (r["real_evaluator"] == "") == (r["real_with_it"] == 0)


def _bench_common():
    """benchmarks/common.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common


def test_runs_name_their_judge_and_old_runs_read_as_the_first():
    common = _bench_common()
    assert common.judge_name(None) == "r3" and common.judge_name("spatial") == "spatial"
    assert [common.judge_of(r) for r in ({}, {"evaluator": "shipped"}, {"evaluator": "r2"})] == ["r1", "r1", "r2"]


def test_real_reading_is_the_judges_rate_on_real_faces_with_the_target():
    import torch

    common = _bench_common()
    labels = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 1]], dtype=torch.float32)
    judged = torch.tensor([[2.0, 3.0], [1.0, -1.0], [-1.0, 2.0], [-3.0, 1.0]])  # misses attribute 0 on face 2
    assert abs(common.real_reading(judged, labels, [0], True) - 2 / 3) < 1e-6  # faces 0-2 have it, 0 and 1 read so
    assert common.real_reading(judged, labels, [0, 1], True) == 0.5  # faces 0 and 2: both read on 0 only
    assert common.real_reading(judged, labels, [0], False) == 1.0  # face 3 lacks it and is read so
    assert common.real_reading(judged, labels, [0, 1], False) is None  # no face lacks both

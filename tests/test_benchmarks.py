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


@pytest.mark.parametrize("extra", [[], ["--max-abs", "1.5", "--logit", "3"]], ids=["default", "options"])
def test_quality_benchmark(tmp_path, extra):
    result = _run("quality.py", tmp_path, "--n", "4", "--n-edit", "4", "--steps", "2", "--batch", "4", "--data-n", "60",
                  "--methods", "nlbp-learned", "dps", "--edits", "Eyeglasses", "--multi", "Eyeglasses", "Smiling",
                  *extra)
    rec = {r["method"]: r for r in result["reconstruction"]}
    assert rec["nlbp-learned"]["consistency_mae"] < 1e-3 < rec["dps"]["consistency_mae"]
    assert rec["nlbp-learned"]["consistency_max"] <= 1e-4 < rec["dps"]["consistency_max"]  # #19: g(x) = y to 1e-4
    assert [r["attribute"] for r in result["editing"]] == ["Eyeglasses", "(no edit)"]
    assert 0 <= result["editing"][0]["success"] <= 1 and result["multi_attribute"][0]["n"] == 4
    from spnn.calibration import calibration_of
    from spnn.models import load_spnn

    assert result["edit_logit"] == (3.0 if extra else calibration_of(load_spnn()).logit)  # default: the SPNN's own
    assert result["edit_calibration"] == calibration_of(load_spnn()).to_dict()


def test_level_sets_benchmark(tmp_path):
    result = _run("level_sets.py", tmp_path, "--attributes", "Eyeglasses", "--n", "2", "--iters", "3",
                  "--data-n", "60", "--grid", str(tmp_path / "grid.png"))
    rows = {r["image"]: r for r in result["rows"]}
    assert set(rows) == {"nlbp", "nearest"} and (tmp_path / "grid.png").exists()
    for r in rows.values():  # both images meet the raised logit (max(y_i, level)) exactly: only the latents differ
        assert r["logit"] >= result["logit"] - 1e-3

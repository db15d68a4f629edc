"""Shared helpers for the benchmark scripts: machine description, tables, JSON results."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from spnn.io import write_json

RESULTS = Path(os.environ.get("SPNN_BENCH_RESULTS") or Path(__file__).parent / "results")  # tests redirect it


def machine(device: str | None = None) -> str:
    """What ran the benchmark: the CUDA device when one was used (``device`` "cuda", or unspecified and visible)."""
    cpu = platform.processor() or platform.machine()
    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    return f"{os.cpu_count()}-core {cpu} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"
        return str(v)
    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) + " |" for r in rows]
    return "\n".join(lines)


def with_interval(rows: list[dict], rate: str = "success", n: str = "images") -> list[dict]:
    """The rows with a column RATE_95: the 95% interval of RATE on N trials (`spnn.evaluation.metrics.rate_interval`),
    for the rows where both are numbers; "0.79-0.96" reads "somewhere in there, 19 times in 20"."""
    from spnn.evaluation.metrics import rate_interval

    def added(r):
        if not isinstance(r.get(rate), (int, float)) or not isinstance(r.get(n), int):
            return r
        lo, hi = rate_interval(float(r[rate]), r[n])
        return {**r, f"{rate}_95": f"{lo:.2f}-{hi:.2f}"}

    return [added(r) for r in rows]


def real_reading(judged: torch.Tensor, labels: torch.Tensor, columns: list[int], value: bool) -> float:
    """Among real faces whose labels set every one of ``columns`` to ``value``, the rate at which the evaluator
    (``judged``: its logits on those faces) reads all of them so: what an edit or a generation that the judge could not
    tell from real faces would score (None without such faces)."""
    has = ((labels[:, columns] > 0.5) == value).all(1)
    return float(((judged[has][:, columns] > 0) == value).all(1).float().mean()) if has.any() else None


def ideal_edits(faces, rows: torch.Tensor, attribute: str, value: bool) -> torch.Tensor:
    """The built-in faces ``faces[rows]`` (an `AvatarFaces`) re-rendered with ``attribute`` set to ``value`` by the
    smallest change of their parts (`spnn.data.counterfactual.edited_parts`): what a perfect editor would return,
    as [-1, 1] images."""
    from spnn.data.common import to_tensor_images
    from spnn.data.counterfactual import render_edited

    return to_tensor_images(np.stack([render_edited(faces.seed, int(faces.index[int(k)]), attribute, value,
                                                    faces.size, faces.version) for k in rows]))


def edit_table(rows: list[dict]) -> str:
    """Editing rows (`quality.py`) as a table of the columns they have, with success's interval."""
    columns = ["attribute", "images", "success", "success_95", "success_real", "success_ideal", "success_on",
               "success_off", "others_kept", "others_kept_ideal", "others_kept_free", "implied_set", "rmse_to_original",
               "bound_met", "within_reach", "unedited"]
    rows = with_interval(rows)
    return table(rows, [c for c in columns if any(c in r for r in rows)])


def multi_table(rows: list[dict]) -> str:
    """Multi-attribute generation rows (every named attribute set, each set) as a table, with all_set's interval."""
    columns = ["attributes", "n", "all_set", "all_set_95", "all_set_real", "each_set"]
    rows = with_interval(rows, "all_set", "n")
    return table(rows, [c for c in columns if any(c in r for r in rows)])


def least_agreed(per_attribute: dict[str, float], k: int = 6) -> str:
    """The k attributes with the lowest agreement, as "Name 0.740, ..."."""
    return ", ".join(f"{n} {v:.3f}" for n, v in sorted(per_attribute.items(), key=lambda kv: kv[1])[:k])


def largest_fidelity_gaps(fidelity: list[dict], k: int) -> list[dict]:
    """Prior-fidelity rows sorted by |rate on samples - rate on real faces| (evaluator), largest first."""
    return sorted(fidelity, key=lambda r: -abs(r["samples_evaluator"] - r["real_evaluator"]))[:k]


REFERENCE = "(real, same labels)"  # the identity rows' reference: a random real face with the original's labels


def identity_measures(xh, xh2, x, ev, same_label) -> dict:
    """Does a reconstruction return its original? Nearest-original rates (pixels, evaluator features), RMSE to the
    original and from the original to the nearest same-label real face (``same_label``, NaN where none), RMSE
    between two seeds (``xh2``), high-frequency ratio."""
    from spnn.evaluation.metrics import high_frequency_ratio, nearest_is_own, rmse

    ok = ~same_label.isnan()
    return {"own_nearest_pixels": nearest_is_own(xh, x), "own_nearest_features": nearest_is_own(ev.embed(xh), ev.embed(x)),
            "rmse_to_original": float(rmse(xh, x).mean()), "rmse_same_attributes_real": float(same_label[ok].mean()),
            "rmse_between_seeds": float(rmse(xh, xh2).mean()), "high_frequency_ratio": high_frequency_ratio(xh, x),
            "faces_with_a_same_attribute_match": f"{int(ok.sum())}/{len(ok)}"}


def same_label_reference(x, labels, judged, pool, pool_labels, nearest_rmse, ev) -> dict:
    """The identity measures for a random real training face with the original's labels (another person with the
    same attributes): what a reconstruction from semantics that returns someone else scores; between_seeds is
    the RMSE between two such faces."""
    from spnn.evaluation.metrics import attribute_agreement, high_frequency_ratio, nearest_is_own, rmse, same_label_draw

    g = torch.Generator().manual_seed(0)
    first = same_label_draw(labels.cpu(), pool_labels, g)
    second = same_label_draw(labels.cpu(), pool_labels, g, exclude=first)
    ok = first >= 0
    both = ok & (second >= 0)
    matched = f"{int(ok.sum())}/{len(ok)}"
    if not ok.any():
        return {"method": REFERENCE, "faces_with_a_same_attribute_match": matched}
    stand_in = pool[first[ok]].to(x.device)
    sources = ok.nonzero().flatten()
    return {"method": REFERENCE, "agreement": attribute_agreement(ev.predict(stand_in), judged[ok])["mean"],
            "own_nearest_pixels": nearest_is_own(stand_in, x, sources),
            "own_nearest_features": nearest_is_own(ev.embed(stand_in), ev.embed(x), sources),
            "rmse_to_original": float(rmse(stand_in, x[ok]).mean()),
            "rmse_same_attributes_real": float(nearest_rmse[ok].mean()),
            "rmse_between_seeds": float(rmse(pool[first[both]], pool[second[both]]).mean()) if both.any() else None,
            "high_frequency_ratio": high_frequency_ratio(stand_in, x), "faces_with_a_same_attribute_match": matched}


def judge_name(evaluator: str | None) -> str:
    """The judge a run used, as its results record it: the name or file given, else the default's name
    (`spnn.models.DEFAULT_JUDGE`)."""
    from spnn.models import DEFAULT_JUDGE

    return evaluator or DEFAULT_JUDGE


def judge_of(result: dict) -> str:
    """The judge of a stored run: runs that recorded none or "shipped" were made when r1 was the default (before
    2026-12-07)."""
    name = result.get("evaluator")
    return "r1" if name in (None, "shipped") else name


def write(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(payload.get("device")), "date": time.strftime("%Y-%m-%d"), **payload}
    path = RESULTS / f"{name}.json"
    return write_json(path, payload)


class Timer:
    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t

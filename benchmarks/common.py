"""Shared helpers for the benchmark scripts: machine description, tables, JSON results."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

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
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"
        return str(v)
    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) + " |" for r in rows]
    return "\n".join(lines)


def least_agreed(per_attribute: dict[str, float], k: int = 6) -> str:
    """The k attributes with the lowest agreement, as "Name 0.740, ..."."""
    return ", ".join(f"{n} {v:.3f}" for n, v in sorted(per_attribute.items(), key=lambda kv: kv[1])[:k])


def largest_fidelity_gaps(fidelity: list[dict], k: int) -> list[dict]:
    """Prior-fidelity rows sorted by |rate on samples - rate on real faces| (evaluator), largest first."""
    return sorted(fidelity, key=lambda r: -abs(r["samples_evaluator"] - r["real_evaluator"]))[:k]


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

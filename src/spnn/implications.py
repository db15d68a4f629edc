"""Label implications: what setting one attribute says about the others in the labelled data.

Some attributes exclude others (hair colours; a bald head has no bangs) or come with them (bangs are straight
hair). An edit that sets one of them and leaves the excluded one on asks the SPNN for a logit vector that no
training image has, and the network's way to it is a colour pattern rather than the attribute. Editing with
the implications sets both: NAME=v implies OTHER=w when, among labelled images with NAME=v, OTHER=1 occurs at
a rate <= tol (w = 0) or >= 1 - tol (w = 1). The rules travel with the SPNN in its edit calibration
(`spnn.calibration`), measured on labelled images by `spnn calibrate`.

>>> labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]] * 10)
>>> rules = label_implications(labels, ["A", "B", "C"], min_support=5)
>>> rules["A=1"], rules["B=1"]
({'B': 0}, {'A': 0})
>>> with_implied({"A": 1.0}, rules)
{'A': 1.0, 'B': 0.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from spnn.errors import ConfigError

__all__ = ["label_implications", "with_implied", "check_implications", "setting_key"]


def setting_key(name: str, value: float) -> str:
    """``"NAME=1"`` for turning an attribute on (value > 0), ``"NAME=0"`` for off (0 or -1)."""
    return f"{name}={int(float(value) > 0)}"


def label_implications(labels: torch.Tensor, names: Sequence[str], tol: float = 0.01,
                       min_support: int = 20) -> dict[str, dict[str, int]]:
    """Rules ``{"NAME=v": {OTHER: w}}`` from 0/1 labels (n, k): P(OTHER=1 | NAME=v) <= tol gives w = 0, >= 1 - tol
    gives w = 1; a value seen on fewer than ``min_support`` images gives no rule."""
    if labels.dim() != 2 or labels.shape[1] != len(names):
        raise ConfigError(f"labels must have shape (n, {len(names)}), got {tuple(labels.shape)}")
    if not (0 <= tol < 0.5):
        raise ConfigError(f"tol must be in [0, 0.5), got {tol}")
    on = labels > 0.5
    rules: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        for value in (1, 0):
            rows = on[on[:, i] == bool(value)]
            if len(rows) < min_support:
                continue
            rate = rows.float().mean(0)
            implied = {names[j]: int(rate[j] >= 0.5) for j in range(len(names))
                       if j != i and (rate[j] <= tol or rate[j] >= 1 - tol)}
            if implied:
                rules[f"{name}={value}"] = implied
    return rules


def check_implications(rules: object, names: Sequence[str] | None = None) -> None:
    """Refuse rules that are not ``{"NAME=0|1": {OTHER: 0|1}}`` (with names among ``names`` if given)."""
    if not isinstance(rules, Mapping):
        raise ConfigError(f"edit calibration: implications must be a mapping, got {type(rules).__name__}")
    known = set(names) if names is not None else None
    for key, implied in rules.items():
        name, _, value = str(key).rpartition("=")
        if not name or value not in ("0", "1") or not isinstance(implied, Mapping):
            raise ConfigError(f"edit calibration: implication {key!r} must be 'NAME=0' or 'NAME=1' mapping to "
                              "{OTHER: 0 or 1}")
        for other, w in implied.items():
            if w not in (0, 1) or isinstance(w, bool):
                raise ConfigError(f"edit calibration: implication {key} -> {other} must be 0 or 1, got {w!r}")
        if known is not None and not ({name} | set(implied)) <= known:
            unknown = sorted(({name} | set(implied)) - known)
            raise ConfigError(f"edit calibration: implication {key} names attributes the SPNN lacks: {unknown}")


def with_implied(changes: Mapping[str, float], rules: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """The changes with what they imply added (values 1.0 / 0.0). Refused, naming both, when a named change
    contradicts another's implication or two implications contradict each other."""
    out = {name: float(v) for name, v in changes.items()}
    source: dict[str, str] = {}
    for name, value in changes.items():
        key = setting_key(name, value)
        for other, w in rules.get(key, {}).items():
            if other in changes:
                given = setting_key(other, changes[other])
                if given != f"{other}={w}":
                    raise ConfigError(f"{key} and {given} never occur together in the labels "
                                      f"this SPNN was calibrated on; drop one, or edit without implications "
                                      "(implied=False, --no-implied)")
            elif other in source and out[other] != float(w):
                raise ConfigError(f"{key} implies {other}={w} but {source[other]} implies {other}={int(out[other])}; "
                                  "drop one, or edit without implications (implied=False, --no-implied)")
            else:
                out[other], source[other] = float(w), key
    return out

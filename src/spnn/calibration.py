"""Editing numbers that belong to one SPNN, stored next to its weights.

How far an edit may push an image depends on the network: the logit level that means "attribute on", and
the *reach* of an edit (max |x| of one full NLBP step from the image, `spnn.tasks.edit_reach`) below which
the network's own step draws the attribute rather than a whole-image pattern. These numbers travel with
the model, in the ``edit_calibration`` entry of its file's metadata, and are read when it loads. The shipped
avatar SPNN carries the values measured for it (validation faces; docs: sampling); another SPNN without them
gets `UNCALIBRATED` with a warning, and `calibrate_edits` (or ``spnn calibrate``) measures them on its own
validation images.

>>> c = EditCalibration(logit=3.0)
>>> c.max_abs_for(torch.tensor([1.0, 3.0, 9.0])).tolist(), c.editable(torch.tensor([1.0, 9.0])).tolist()
([1.5, 1.2000000476837158, 1.2000000476837158], [True, False])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import torch

from spnn.checks import check_fields, is_level
from spnn.errors import ConfigError
from spnn.implications import check_implications, label_implications, setting_key

__all__ = ["EditCalibration", "UNCALIBRATED", "calibration_of", "stored_calibration", "calibrate_edits",
           "check_starts", "check_levels", "check_implied_levels", "check_travel", "check_keeps", "check_range_rules",
           "check_recon_recipes", "RANGE_RULES"]

# what NLBP's range safeguard does to a projection that leaves [-M, M]: halve its step, or clip it
# (`spnn.diffusion.guidance.BackProjection`'s ``range_rule``)
RANGE_RULES = ("halve", "clip")


def _mapping(value: object, what: str) -> dict:
    """``value`` if it is a mapping, else a ConfigError naming the calibration field ``what``."""
    if not isinstance(value, dict):
        raise ConfigError(f"edit calibration: {what} must be a mapping, got {type(value).__name__}")
    return value


def _stored_level(v: object) -> bool:
    """A level as stored in the JSON metadata: a plain finite positive number (`is_level` of an int or float)."""
    return isinstance(v, (int, float)) and is_level(v)


def check_starts(starts: object) -> None:
    """Refuse editing starts that are not ``{NAME: {"t_start": 1..999, "invert": bool}}``."""
    for name, start in _mapping(starts, "starts").items():
        if not isinstance(start, dict) or set(start) != {"t_start", "invert"}:
            raise ConfigError(f"edit calibration: the start of {name!r} must be {{'t_start': int, 'invert': bool}}, "
                              f"got {start!r}")
        t, inv = start["t_start"], start["invert"]
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 999 or not isinstance(inv, bool):
            raise ConfigError(f"edit calibration: the start of {name!r} needs t_start in 1..999 and invert true or "
                              f"false, got {start!r}")


def check_levels(levels: object) -> None:
    """Refuse bound levels that are not ``{NAME or NAME=1 or NAME=0: finite positive number}``."""
    for name, level in _mapping(levels, "levels").items():
        if not isinstance(name, str) or not name.split("=")[0] or name.count("=") > 1 or (
                "=" in name and name.split("=")[1] not in ("0", "1")):
            raise ConfigError(f"edit calibration: level key {name!r} must be NAME (both directions), NAME=1 (on) or "
                              "NAME=0 (off)")
        if not _stored_level(level):
            raise ConfigError(f"edit calibration: the level of {name!r} must be a finite positive number, got "
                              f"{level!r}")


def check_implied_levels(levels: object) -> None:
    """Refuse levels of implied attributes that are not ``{NAME=1 or NAME=0: finite positive number}``."""
    for key, level in _mapping(levels, "implied_levels").items():
        name, _, value = str(key).rpartition("=")
        if not isinstance(key, str) or not name or "=" in name or value not in ("0", "1"):
            raise ConfigError(f"edit calibration: implied_levels key {key!r} must be NAME=1 (turning it on) or NAME=0 "
                              "(off)")
        if not _stored_level(level):
            raise ConfigError(f"edit calibration: the implied level of {key!r} must be a finite positive number, got "
                              f"{level!r}")


def check_keeps(keeps: object) -> None:
    """Refuse keeping margins that are not ``{NAME: finite positive number}``."""
    for name, margin in _mapping(keeps, "keeps").items():
        if not isinstance(name, str) or not name or not _stored_level(margin):
            raise ConfigError(f"edit calibration: the keeping margin of {name!r} must be a finite positive number, "
                              f"got {margin!r}")


def check_range_rules(rules: object) -> None:
    """Refuse range-safeguard rules that are not ``{NAME: one of RANGE_RULES}``."""
    for name, rule in _mapping(rules, "range_rules").items():
        if not isinstance(name, str) or not name or rule not in RANGE_RULES:
            raise ConfigError(f"edit calibration: the range rule of {name!r} must be one of {RANGE_RULES}, got "
                              f"{rule!r}")


def check_travel(travel: object, what: str = "edit calibration: generation_travel") -> None:
    """Refuse a time-travel setting that is not ``[length >= 1, repeats >= 0[, t_min[, t_max]]]`` (integers)."""
    ok = isinstance(travel, (list, tuple)) and 2 <= len(travel) <= 4 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in travel)
    if not ok or travel[0] < 1 or travel[1] < 0 or any(v < 0 for v in travel[2:]):
        raise ConfigError(f"{what} must be (length >= 1, repeats >= 0[, t_min[, t_max]]) as integers, e.g. (1, 2), "
                          f"got {travel!r}")


def check_recon_recipes(recipes: object) -> None:
    """Refuse reconstruction recipes that are not ``{"STEPS": {"slack": number or null, "travel": [L, R...] or null}}``
    (STEPS a positive integer written as a string, as JSON keys are)."""
    for steps, recipe in _mapping(recipes, "reconstruction_recipes").items():
        if not isinstance(steps, str) or not steps.isdigit() or int(steps) < 1:
            raise ConfigError(f"edit calibration: reconstruction recipe key {steps!r} must be a step count as a "
                              "string, e.g. '20'")
        if not isinstance(recipe, dict) or set(recipe) != {"slack", "travel"}:
            raise ConfigError(f"edit calibration: the reconstruction recipe for {steps} steps must be {{'slack': "
                              f"number or null, 'travel': [L, R] or null}}, got {recipe!r}")
        slack = recipe["slack"]
        if slack is not None and not _stored_level(slack):
            raise ConfigError(f"edit calibration: the slack of the {steps}-step reconstruction recipe must be a finite "
                              f"positive number or null, got {slack!r}")
        if recipe["travel"] is not None:
            check_travel(recipe["travel"], f"edit calibration: the travel of the {steps}-step reconstruction recipe")


def _shared(stored: dict, names):
    """The value ``stored`` holds for every one of ``names`` if they all have the same, else None."""
    found = [stored.get(name) for name in names]
    return found[0] if found and all(f is not None and f == found[0] for f in found) else None


@dataclass(frozen=True)
class EditCalibration:
    """``logit``: NAME=1 means logit >= +logit, NAME=0 logit <= -logit. Range safeguard of ``max_abs="auto"``
    edits: M = ``max_abs_reachable`` for images whose edit reach is <= ``reach_limit``, ``max_abs`` up to
    ``reach_max``, unedited beyond; generation (no image to measure) uses ``max_abs``. ``label_temperature``
    tau: the labels mode of NLBP's latents (`spnn.operators.SPNNOperator`) reads a logit v as logit tanh(v / tau).
    ``implications``: ``{"NAME=v": {OTHER: w}}``, what setting an attribute implies for others in the labelled
    data (`spnn.implications`); edits and generation set them too unless told not to. ``starts``:
    ``{NAME: {"t_start": int, "invert": bool}}``, the editing start measured best for an attribute with this
    network (`start_for`); an edit whose named attributes share one uses it unless the caller sets its own.
    ``levels``: ``{NAME: level}``, a bound level measured best for an attribute with this network, used in
    place of ``logit`` for it (named or implied) unless the caller gives a logit; ``NAME=1`` / ``NAME=0`` keys
    hold a level for turning it on / off alone (`spnn.operators.level_of`). ``region``: the threshold of the
    region an edit is confined to (`spnn.tasks.edit_region`: the pixels the network's own step moves by at least
    this fraction of its largest move), None for none (the whole image is free). ``keeps``: ``{NAME: margin}``,
    the keeping margin measured best for an edit of that attribute (`spnn.operators.keep_bounds`; `keep_for`): an
    edit whose named attributes share one holds the other attributes on their side unless the caller says otherwise.
    ``generation_travel``: the RePaint time travel (length, repeats[, t_min, t_max]) measured best for
    multi-attribute generation with this network and the prior it was measured with (`spnn.tasks.generate`'s
    ``travel="auto"``), None for none. ``range_rules``: ``{NAME: rule}``, what the range safeguard does to a
    projection that leaves [-M, M] (`RANGE_RULES`: halve its step, or clip the image), measured best for edits and
    generation naming that attribute with this network (`range_rule_for`, ``range_rule="auto"``); "halve" where
    none is stored. ``reconstruction_recipes``: ``{"STEPS": {"slack": D or None, "travel": [L, R] or None}}``, the
    NLBP slack and time travel measured best for reconstruction from semantics (latents from the labels) at that
    many steps with this network and the prior it was measured with (`recipe_for`; `spnn.tasks.reconstruct`'s
    ``slack="auto"`` / ``travel="auto"``).
    """

    logit: float = 4.0
    reach_limit: float = 2.0
    reach_max: float = 4.0
    max_abs_reachable: float = 1.5
    max_abs: float = 1.2
    label_temperature: float = 1.0
    implications: dict = field(default_factory=dict)
    starts: dict = field(default_factory=dict)
    levels: dict = field(default_factory=dict)
    region: float | None = None
    generation_travel: list | None = None
    keeps: dict = field(default_factory=dict)
    range_rules: dict = field(default_factory=dict)
    implied_levels: dict = field(default_factory=dict)
    reconstruction_recipes: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        for name in ("logit", "reach_limit", "reach_max", "max_abs_reachable", "max_abs", "label_temperature"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and not math.isnan(v)):
                raise ConfigError(f"edit calibration: {name} must be a positive number, got {v!r}")
        if self.reach_max < self.reach_limit:
            raise ConfigError("edit calibration: reach_max must be >= reach_limit")
        check_implications(self.implications)
        check_starts(self.starts)
        check_levels(self.levels)
        if self.region is not None and (isinstance(self.region, bool) or not isinstance(self.region, (int, float))
                                        or not 0 < self.region < 1):
            raise ConfigError(f"edit calibration: region must be a fraction in (0, 1) or null, got {self.region!r}")
        if self.generation_travel is not None:
            check_travel(self.generation_travel)
        check_keeps(self.keeps)
        check_range_rules(self.range_rules)
        check_implied_levels(self.implied_levels)
        check_recon_recipes(self.reconstruction_recipes)

    def start_for(self, attributes) -> dict:
        """The editing start of ``attributes`` (names): the stored one if every name has the same, else {}.

        >>> c = EditCalibration(starts={"Smiling": {"t_start": 350, "invert": False}})
        >>> c.start_for(["Smiling"]), c.start_for(["Smiling", "Bangs"])
        ({'t_start': 350, 'invert': False}, {})
        """
        found = _shared(self.starts, attributes)
        return {} if found is None else dict(found)

    def keep_for(self, attributes) -> float | None:
        """The keeping margin of an edit of ``attributes`` (names): the stored one if every name has the same, else
        None.

        >>> EditCalibration(keeps={"Smiling": 0.5}).keep_for(["Smiling"]), EditCalibration().keep_for(["Smiling"])
        (0.5, None)
        """
        return _shared(self.keeps, attributes)

    def range_rule_for(self, attributes) -> str:
        """The range-safeguard rule of an edit or generation of ``attributes`` (names): the stored one if every name
        has the same, else "halve".

        >>> c = EditCalibration(range_rules={"Gray_Hair": "clip"})
        >>> c.range_rule_for(["Gray_Hair"]), c.range_rule_for(["Gray_Hair", "Smiling"])
        ('clip', 'halve')
        """
        return _shared(self.range_rules, attributes) or "halve"

    def implied_level_for(self, attributes: dict) -> float | None:
        """The level of what an edit setting ``attributes`` ({name: 1 or 0}) implies: the stored one if every
        setting has the same, else None.

        >>> c = EditCalibration(implied_levels={"Bald=1": 3.0})
        >>> c.implied_level_for({"Bald": 1}), c.implied_level_for({"Bald": 0})
        (3.0, None)
        >>> c.implied_level_for({"Bald": 1, "Smiling": 1}) is None
        True
        """
        return _shared(self.implied_levels, [setting_key(name, value) for name, value in attributes.items()])

    def recipe_for(self, steps: int) -> dict:
        """The reconstruction recipe stored for the step count nearest ``steps`` (by ratio; the smaller on a tie):
        ``{"steps": stored count, "slack": ..., "travel": tuple or None}``, or {} if none is stored.

        >>> c = EditCalibration(reconstruction_recipes={"20": {"slack": 0.5, "travel": None},
        ...                                             "100": {"slack": 1.0, "travel": [5, 2]}})
        >>> c.recipe_for(100), c.recipe_for(40)["steps"], c.recipe_for(50)["steps"], EditCalibration().recipe_for(20)
        ({'steps': 100, 'slack': 1.0, 'travel': (5, 2)}, 20, 100, {})
        """
        if not self.reconstruction_recipes:
            return {}
        nearest = min((int(k) for k in self.reconstruction_recipes), key=lambda k: (abs(math.log(steps / k)), k))
        recipe = self.reconstruction_recipes[str(nearest)]
        travel = recipe["travel"]
        return {"steps": nearest, "slack": recipe["slack"], "travel": None if travel is None else tuple(travel)}

    def max_abs_for(self, reach: torch.Tensor) -> torch.Tensor:
        """Per image, the range safeguard M of an "auto" edit."""
        return torch.where(reach <= self.reach_limit, self.max_abs_reachable, self.max_abs).to(reach)

    def editable(self, reach: torch.Tensor) -> torch.Tensor:
        """Per image, whether the edit is within the network's reach."""
        return reach <= self.reach_max

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not (isinstance(v, float) and math.isinf(v))}

    @classmethod
    def from_dict(cls, d: dict) -> EditCalibration:
        check_fields(cls, d, "edit calibration entries")
        return cls(**d)


# for an SPNN that carries no calibration: no image is refused, one safeguard for all
UNCALIBRATED = EditCalibration(logit=4.0, reach_limit=math.inf, reach_max=math.inf, max_abs_reachable=1.5,
                               max_abs=1.5, source="uncalibrated defaults")
_warned: set[int] = set()


def stored_calibration(op) -> EditCalibration | None:
    """The calibration an operator's SPNN carries, else None (no warning: for what works without one)."""
    stored = getattr(getattr(op, "net", op), "edit_calibration", None)
    if not stored:
        return None
    return stored if isinstance(stored, EditCalibration) else EditCalibration.from_dict(stored)


def calibration_of(op) -> EditCalibration:
    """The calibration an operator's SPNN carries, else `UNCALIBRATED` (with a warning, once per network)."""
    net = getattr(op, "net", op)
    if (stored := stored_calibration(net)) is not None:
        return stored
    if id(net) not in _warned:
        _warned.add(id(net))
        warnings.warn("this SPNN carries no edit calibration: edits use logit 4 and a range safeguard of 1.5 for "
                      "every image; measure its own values with spnn.calibration.calibrate_edits or `spnn "
                      "calibrate` (docs: sampling)", stacklevel=3)
    return UNCALIBRATED


@torch.no_grad()
def calibrate_edits(op, images: torch.Tensor, labels: torch.Tensor, attributes: list[str] | None = None,
                    quantile: float = 0.9, rule_labels: torch.Tensor | None = None) -> EditCalibration:
    """Measure an SPNN's editing numbers on validation images with 0/1 labels.

    ``logit``: the median, over attributes, of the median logit of images labelled positive (rounded to 0.5).
    ``reach_limit``: the median, over attributes, of the ``quantile`` of the edit reach of turning the
    attribute on in images that lack it; ``reach_max`` twice that. Safeguards 1.5 and 1.2 as for the shipped
    SPNN (they are in image units, not network units). ``implications`` from ``rule_labels`` (0/1 labels of
    more images, as rare attributes need them; default ``labels``), `spnn.implications.label_implications`."""
    from spnn.operators import edit_bounds
    from spnn.tasks import edit_reach

    names = list(op.attribute_names or [])
    if not names:
        raise ConfigError("calibration needs an SPNN with attribute names")
    if labels.shape != (len(images), len(names)):
        raise ConfigError(f"labels must have shape ({len(images)}, {len(names)}), got {tuple(labels.shape)}")
    y = op.A(images)
    chosen = attributes or names
    logits, reaches = [], []
    for name in chosen:
        i = names.index(name)
        pos, neg = labels[:, i] > 0.5, labels[:, i] <= 0.5
        if pos.sum() >= 3:
            logits.append(float(y[pos, i].median()))
        if neg.sum() >= 3:
            level = max(1.0, float(y[pos, i].median())) if pos.sum() >= 3 else 4.0
            bounds = edit_bounds(op, int(neg.sum()), {name: 1}, level, device=y.device, dtype=y.dtype)
            reaches.append(float(torch.quantile(edit_reach(op, images[neg], bounds), quantile)))
    if not logits or not reaches:
        raise ConfigError("calibration needs at least 3 positive and 3 negative images of some attribute")
    logit = max(1.0, round(2 * float(torch.tensor(logits).median())) / 2)
    limit = float(torch.tensor(reaches).median())
    rule_labels = labels if rule_labels is None else rule_labels
    rules = label_implications(rule_labels.cpu(), names)
    return EditCalibration(logit=logit, reach_limit=round(limit, 2), reach_max=round(2 * limit, 2),
                           implications=rules, source=f"calibrate_edits on {len(images)} images, quantile {quantile}, "
                           f"implications from {len(rule_labels)} labels")

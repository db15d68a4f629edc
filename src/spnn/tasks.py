"""Zero-shot tasks on top of the sampler: reconstruction from semantics, attribute generation and
editing, linear restoration. Each returns images and the numbers that judge them.

Editing recipe (the paper does not publish one): invert the real image with deterministic DDIM to ``t_start``
(default 500 of 1000), then sample back with eta = 0.3 and back-projection onto *one-sided* bounds on the
chosen attributes and those they imply in the SPNN's labels (`implied_attributes`, `spnn.implications`; off
with ``implied=False``): NAME=1 means logit >= +logit, NAME=0 means logit <= -logit; a logit already past its
bound does not move, and the other coordinates are free (`edit_bounds`), or held on the original's side where
the SPNN stores a keeping margin for the named attributes (``keep``, `keep_bounds`). Without guidance, inversion and
eta = 0 return the image close to unchanged, so what changes is mostly what the bounds ask for. The
inversion costs one extra prior call per step below ``t_start``. lam = 0.5 above t = 200 ("gentle"), 1
below. A range safeguard (``max_abs`` M) halves the step of any sample whose projected image would leave
[-M, M] and keeps x0 if five halvings do not help: an SPNN direction that the network cannot realise inside
the image range then gives an unedited-looking image instead of a broken one; with ``max_abs=None`` the
final step meets the bounds exactly. ``max_abs="auto"`` (the default) decides per image from the edit's
*reach* (`edit_reach`: max |x| of one full NLBP step from the image): within the network's reach the
safeguard is looser, beyond its limit the image comes back unedited (``info["edited"]`` False). The logit
level and the reach limits belong to the SPNN (`spnn.calibration`: stored with its weights; the shipped
avatar SPNN's were measured on its validation faces: logit 3.5, M = 1.5 up to reach 1.82, 1.2 up to 3.64).
With a ``region`` (`edit_region`: where the SPNN's own full step moves pixels, or a mask of one's own) every step
but the last pulls the pixels outside it back to the original (`InRegion`), so background, skin and the attributes
that live elsewhere stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import inf

import torch
import torch.nn.functional as F

from spnn.calibration import RANGE_RULES, calibration_of, check_travel, stored_calibration
from spnn.checks import check_images
from spnn.diffusion.guidance import (
    DPS,
    BackProjection,
    ClassifierGuidance,
    Guidance,
    InRegion,
    PaperDPS,
    check_region,
    paper_lam,
)
from spnn.diffusion.presets import SamplerPreset, get_preset
from spnn.diffusion.prior import Prior
from spnn.diffusion.sampler import sample
from spnn.errors import ConfigError
from spnn.graphs import check_graphs
from spnn.implications import check_implications, setting_key, with_implied
from spnn.operators import (
    Operator,
    SPNNOperator,
    check_changes,
    check_keep,
    edit_bounds,
    edit_target,
    keep_bounds,
    level_of,
)

__all__ = ["EDIT_T_START", "EDIT_ETA", "EDIT_MAX_MOVE", "BOUND_TOL", "METHODS", "SOLVERS", "check_pair", "edit_reach",
           "edit_region", "full_step", "parse_region", "parse_travel", "parse_keep", "parse_slack", "parse_max_abs",
           "parse_range_rule", "implied_attributes", "make_guidance", "solve", "reconstruction_recipe", "reconstruct",
           "generate", "edit", "restore", "TaskResult", "gentle_lam"]

METHODS = ("nlbp", "dps", "dps-paper", "cg", "none", "daps", "red-diff")
SOLVERS = ("daps", "red-diff")  # methods with their own loop (spnn.diffusion.solvers): reconstruct and restore
EDIT_T_START = 500
EDIT_ETA = 0.3
EDIT_MAX_MOVE: float | None = None  # budget of the summed RMS change of the projections (BackProjection)
BOUND_TOL = 0.05  # logits: a bound counts as met within this (reports, benchmarks)


@dataclass
class TaskResult:
    images: torch.Tensor
    targets: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None

    def violation(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Per-sample max distance of A(x_hat) from the box (bounds), else from the target on the mask."""
        if self.bounds is not None:
            lower, upper = (b.to(y_hat) for b in self.bounds)
            return torch.maximum((lower - y_hat).clamp_min(0), (y_hat - upper).clamp_min(0)).flatten(1).amax(1)
        diff = (y_hat - self.targets.to(y_hat)).abs()
        return (diff[:, self.mask] if self.mask is not None else diff).flatten(1).amax(1)


def parse_region(value, calib=None) -> float | torch.Tensor | None:
    """An edit's region setting: "auto" (``calib.region``; kept as "auto" without ``calib``), a threshold in (0, 1),
    a tensor, or None / "off"."""
    if isinstance(value, torch.Tensor):
        return value
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none")):
        return None
    if isinstance(value, str) and value.lower() == "auto":
        return "auto" if calib is None else calib.region
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"region must be 'auto', 'off' or a fraction in (0, 1), got {value!r}") from None
    if not 0 < v < 1:
        raise ConfigError(f"region must be 'auto', 'off' or a fraction in (0, 1), got {value!r}")
    return v


def full_step(op: SPNNOperator, images: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """One full NLBP step (lam = 1) from the images onto the bounds: the SPNN's own way to the edit."""
    with torch.no_grad():
        return BackProjection(op, None, lam=1.0, bounds=bounds).project(images, 0)


def edit_reach(op: SPNNOperator, images: torch.Tensor, bounds: tuple[torch.Tensor, torch.Tensor],
               stepped: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, max |x'| of one full NLBP step from the image onto the bounds (`full_step`, or ``stepped``
    if given): how far outside the image range the SPNN's own way to the edit lies (`benchmarks/level_sets.py`)."""
    stepped = full_step(op, images, bounds) if stepped is None else stepped
    return stepped.flatten(1).abs().amax(1)


def edit_region(images: torch.Tensor, stepped: torch.Tensor, threshold: float, grow: int = 1) -> torch.Tensor:
    """Where the edit may change pixels, (n, 1, H, W) of 0 / 1: the pixels that the SPNN's own full step
    (`full_step`) moves by at least ``threshold`` times its largest move in the image, d = mean_c |x' - x|
    averaged over 3 x 3, grown by ``grow`` pixels (none where the step moves nothing). For an SPNN whose steps
    are perceptual this is the attribute's place: the mouth for Smiling, the hair for a hair colour."""
    if not (0 < threshold < 1):
        raise ConfigError(f"region threshold = {threshold!r}: a fraction of the largest move, in (0, 1)")
    d = F.avg_pool2d((stepped - images).abs().mean(1, keepdim=True), 3, 1, 1, count_include_pad=False)
    peak = d.flatten(1).amax(1).view(-1, 1, 1, 1)
    m = ((d >= threshold * peak) & (d > 0)).to(images.dtype)  # a step that moves nothing: an empty region
    return F.max_pool2d(m, 2 * grow + 1, 1, grow) if grow > 0 else m


def parse_travel(value, calib=None) -> tuple | str | None:
    """A time-travel setting: (length, repeats[, t_min[, t_max]]), "L,R[,T_MIN[,T_MAX]]", "auto"
    (``calib.generation_travel``; kept as "auto" without ``calib``) or None / "off".

    >>> parse_travel("1,2"), parse_travel("off"), parse_travel((5, 2, 0, 500))
    ((1, 2), None, (5, 2, 0, 500))
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        if calib is None:
            return "auto"
        return None if calib.generation_travel is None else tuple(calib.generation_travel)
    if isinstance(value, str):
        try:
            value = tuple(int(v) for v in value.split(","))
        except ValueError:
            raise ConfigError(f"travel must be 'auto', 'off' or L,R[,T_MIN[,T_MAX]] as integers (e.g. 1,2), got "
                              f"{value!r}") from None
    check_travel(value, "travel")
    return tuple(value)


_NUMBER = object()  # `_off_or_auto`: neither word, a value to read


def _off_or_auto(value):
    """None for None / "off" / "none", "auto" for "auto", else `_NUMBER` (the setting is a value)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
        return None
    return "auto" if isinstance(value, str) and value.strip().lower() == "auto" else _NUMBER


def parse_keep(value) -> float | str | None:
    """A keeping setting (`spnn.operators.keep_bounds`): "auto" (the margin the SPNN's calibration stores for the
    named attributes: `EditCalibration.keep_for`), a positive margin, or None / "off".

    >>> parse_keep("auto"), parse_keep("off"), parse_keep("0.5")
    ('auto', None, 0.5)
    """
    if (word := _off_or_auto(value)) is not _NUMBER:
        return word
    try:
        margin = float(value) if isinstance(value, str) else value
    except ValueError:
        raise ConfigError(f"keep must be 'auto', 'off' or a positive logit margin (e.g. 0.5), got {value!r}") from None
    check_keep(margin)
    return float(margin)


def parse_slack(value) -> float | str | None:
    """A slack setting for reconstruction (`BackProjection` ``slack``): "auto" (the SPNN's stored recipe:
    `reconstruction_recipe`), a logit distance >= 0, or None / "off".

    >>> parse_slack("auto"), parse_slack("off"), parse_slack("0.5")
    ('auto', None, 0.5)
    """
    if (word := _off_or_auto(value)) is not _NUMBER:
        return word
    try:
        slack = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except ValueError:
        slack = None
    if slack is None or not 0 <= slack < inf:
        raise ConfigError(f"slack must be 'auto', 'off' or a number >= 0, got {value!r}")
    return slack


def parse_max_abs(value) -> float | str | torch.Tensor | None:
    """A range-safeguard setting: "auto", a number, 0 / "off" / None for none, or a tensor of per-image values."""
    if isinstance(value, torch.Tensor):
        return value
    if value is None or (isinstance(value, str) and value.lower() in ("off", "none")):
        return None
    if isinstance(value, str) and value.lower() == "auto":
        return "auto"
    try:
        m = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"max_abs must be 'auto', a positive finite number or 0 (off), got {value!r}") from None
    if not (0 <= m < float("inf")):
        raise ConfigError(f"max_abs must be 'auto', a positive finite number or 0 (off), got {value!r}")
    return m or None


def parse_range_rule(value, calib=None, attributes=()) -> str:
    """A range-safeguard rule: "halve" or "clip" (`RANGE_RULES`), or "auto": with a calibration, the one it stores
    for ``attributes`` (`EditCalibration.range_rule_for`).

    >>> from spnn.calibration import EditCalibration
    >>> c = EditCalibration(range_rules={"Gray_Hair": "clip"})
    >>> parse_range_rule("auto", c, ["Gray_Hair"]), parse_range_rule("auto", c, ["Bangs"]), parse_range_rule("Halve")
    ('clip', 'halve', 'halve')
    """
    rule = str(value).lower()
    if rule == "auto":
        return calib.range_rule_for(attributes) if calib is not None else "auto"
    if rule not in RANGE_RULES:
        raise ConfigError(f"range_rule must be 'auto', 'halve' or 'clip', got {value!r}")
    return rule


def _range_rule_of(method: str, value, calib, attributes) -> str | None:
    """The range rule an edit or generation runs with: NLBP's (`parse_range_rule`), None for other methods, which
    have no range safeguard (a rule other than "auto" for them is refused)."""
    rule = parse_range_rule(value, calib, attributes)
    if method == "nlbp":
        return rule
    if str(value).lower() != "auto":
        raise ConfigError(f"range_rule is NLBP's range safeguard; {method} has none: use method='nlbp' or "
                          "range_rule='auto'")
    return None


def implied_attributes(op: SPNNOperator, attributes: dict[str, float], logit: float,
                       implied: bool = True) -> dict[str, float]:
    """What the named attributes imply in the labels the SPNN was calibrated on (`spnn.implications`), beyond
    themselves: none without ``implied`` or for an SPNN whose calibration has no rules."""
    check_changes(attributes, logit)
    if not implied:
        return {}
    rules = calibration_of(op).implications
    check_implications(rules, getattr(op, "attribute_names", None))
    return {k: v for k, v in with_implied(attributes, rules).items() if k not in attributes}


def bound_levels(calib, logit: float | None, attributes: dict[str, float] | None = None,
                 implied: dict[str, float] | None = None) -> tuple[float, dict[str, float]]:
    """The edit's bound level and per-attribute levels: the caller's ``logit`` for every attribute, or (None)
    the calibration's logit with the levels it stores for some attributes (`EditCalibration.levels`), and for
    the ``implied`` settings the level it stores for what the named ``attributes`` imply
    (`EditCalibration.implied_level_for`)."""
    if logit is not None:
        return logit, {}
    levels = dict(calib.levels)
    level = calib.implied_level_for(attributes or {})
    if level is not None:
        levels.update({setting_key(name, value): level for name, value in (implied or {}).items()})
    return calib.logit, levels


def gentle_lam(t: int) -> float:
    """Editing step: 0.5 above t = 200, 1 below."""
    return 0.5 if t > 200 else 1.0


def check_pair(prior: Prior, op: Operator) -> None:
    """The operator must take the images the prior makes."""
    shape = tuple(getattr(op, "input_shape", ()) or ())
    if shape and shape != tuple(prior.image_shape):
        raise ConfigError(f"the operator takes images of shape {shape} but the prior makes {tuple(prior.image_shape)}; "
                          "give an SPNN (or operator) and a prior for the same image size")


def _check_slack(method: str, slack: float | None) -> None:
    if slack is not None and method != "nlbp":
        raise ConfigError(f"slack loosens NLBP's target before the last step; {method} has no such target: use "
                          "method='nlbp' or drop slack")


def make_guidance(method: str, op: Operator, y: torch.Tensor, *, mask=None, lam=paper_lam, skip_tol="preset",
                  zeta: float = 0.5, cg_scale: float = 1.0, bounds=None, max_abs: float | None = None,
                  max_move: float | None = None, preset: str | SamplerPreset = "spnn",
                  slack: float | None = None, range_rule: str = "halve") -> Guidance:
    """Guidance by name: nlbp (back-projection; DDNM for linear operators), dps (Chung et al.), dps-paper (the
    authors' variant, `PaperDPS`), cg (classifier guidance), none.

    ``bounds`` (lower, upper), ``max_abs``, ``range_rule``, ``max_move``, ``slack`` apply to nlbp (see
    `BackProjection`); the gradient
    methods use the point target y with ``mask``. ``skip_tol``: "preset" (the preset's skip rule: off for
    ours, 0.11 for the paper's), None (never skip) or a tolerance. ``preset`` also sets NLBP's last-step rule and
    update form (`spnn.diffusion.presets`)."""
    pr = get_preset(preset)
    _check_slack(method, slack)
    if method == "nlbp":
        skip_tol = pr.skip_tol if isinstance(skip_tol, str) and skip_tol == "preset" else skip_tol
        return BackProjection(op, None if bounds is not None else y, lam=lam, mask=mask, skip_tol=skip_tol,
                              bounds=bounds, max_abs=max_abs, max_move=max_move, exact_at_end=pr.exact_at_end,
                              form=pr.update, slack=slack, range_rule=range_rule)
    if method == "dps":
        return DPS(op, y, zeta=zeta, mask=mask)
    if method == "dps-paper":
        return PaperDPS(op, y, zeta=zeta, mask=mask)
    if method == "cg":
        return ClassifierGuidance(op, y, scale=cg_scale, mask=mask)
    if method == "none":
        return Guidance()
    if method in SOLVERS:
        raise ConfigError(f"{method} is a solver for a measurement y with its own loop: use it with reconstruct or "
                          "restore (or spnn.diffusion.solvers), not for generation or editing")
    raise ConfigError(f"unknown method {method!r}; choose one of {METHODS}")


def reconstruct(prior: Prior, op: SPNNOperator, images: torch.Tensor, *, method: str = "nlbp",
                steps: int = 100, seeds=None, skip_tol: float | None | str = "preset",
                travel: tuple | str | None = "auto", preset: str | SamplerPreset = "spnn", precision: str = "auto",
                progress: bool = True, slack: float | str | None = "auto", graphs: str | bool = "auto",
                **guidance_options) -> TaskResult:
    """Reconstruction from semantics: y = g(image); sample images x with g(x) = y.

    ``preset``: "spnn" (ours) or "paper" (the authors' loop step for step: `spnn.diffusion.presets`).
    ``skip_tol``: the paper's rule (0.11) stops projecting a sample once its attributes are about right; the
    preset's by default ("preset": off for ours, 0.11 for the paper's), None never skips. ``travel``: RePaint
    time travel (length, repeats), see `spnn.diffusion.sample`. ``slack`` (nlbp): the target's box before the
    last step (`BackProjection`). Each of the two "auto" (the default): the recipe the SPNN stores for about this
    many steps where it applies (NLBP with latents from the labels), else none (`reconstruction_recipe`);
    ``info`` says what ran. ``graphs``: CUDA-graph replays, as in `spnn.diffusion.sample` (every task)."""
    check_images(images)
    check_pair(prior, op)
    check_graphs(graphs)
    recipe = reconstruction_recipe(op, steps, method, slack, travel)
    with torch.no_grad():
        y = op.A(images.to(next(prior.parameters())))
    if method in SOLVERS:
        return TaskResult(solve(method, prior, op, y, steps, seeds, precision, progress, guidance_options), y,
                          info=recipe)
    guidance = make_guidance(method, op, y, skip_tol=skip_tol, preset=preset, slack=recipe["slack"],
                             **guidance_options)
    out = sample(prior, len(y), steps=steps, guidance=guidance, seeds=seeds, travel=recipe["travel"], preset=preset,
                 precision=precision, progress=progress, graphs=graphs).images
    return TaskResult(out, y, info=recipe)


def reconstruction_recipe(op: Operator | None, steps: int, method: str = "nlbp", slack: float | str | None = "auto",
                          travel: tuple | str | None = "auto") -> dict:
    """The slack and time travel a reconstruction runs with: each "auto" takes the recipe the SPNN stores for the
    step count nearest ``steps`` (`spnn.calibration.EditCalibration.recipe_for`), which applies only where it was
    measured (NLBP with latents from the labels, which the paper's loop does not take) and is none elsewhere;
    "off" / None: none; a number or (length, repeats): that. Returns ``{"slack", "travel", "recipe_steps"}`` (the
    stored count used, or None).

    >>> reconstruction_recipe(None, 20, slack="auto", travel="1,2")  # no SPNN with latents from the labels: none
    {'slack': None, 'travel': (1, 2), 'recipe_steps': None}
    """
    slack, travel = parse_slack(slack), parse_travel(travel)
    recipe = {}
    if "auto" in (slack, travel) and method == "nlbp" and getattr(op, "latents_from", None) == "labels" and (
            calib := stored_calibration(op)) is not None:
        recipe = calib.recipe_for(steps)
    slack = recipe.get("slack") if slack == "auto" else slack
    travel = recipe.get("travel") if travel == "auto" else travel
    _check_slack(method, slack)
    if method in SOLVERS and travel is not None:
        raise ConfigError(f"{method} has its own loop without time travel: drop travel or use method='nlbp'")
    return {"slack": slack, "travel": travel, "recipe_steps": recipe.get("steps")}


def solve(method: str, prior: Prior, op, y: torch.Tensor, steps: int = 200, seeds=None, precision: str = "auto",
          progress: bool = True, options: dict | None = None) -> torch.Tensor:
    """Images from the measurement ``y`` by DAPS (``steps`` annealing levels) or RED-diff (``steps`` Adam steps),
    `spnn.diffusion.solvers`; ``options`` go to the solver."""
    from spnn.diffusion.solvers import daps, red_diff

    options = {k: v for k, v in (options or {}).items() if k != "lam"}
    if method == "daps":
        return daps(prior, op, y, levels=steps, seeds=seeds, precision=precision, progress=progress, **options).images
    return red_diff(prior, op, y, steps=steps, seeds=seeds, precision=precision, progress=progress, **options).images


def generate(prior: Prior, op: SPNNOperator, attributes: dict[str, float], n: int, *, method: str = "nlbp",
             steps: int = 100, seeds=None, logit: float | None = None, max_abs: float | str | None = "auto",
             max_move: float | None = EDIT_MAX_MOVE, preset: str | SamplerPreset = "spnn", precision: str = "auto",
             progress: bool = True, implied: bool = True, travel: tuple | str | None = "auto",
             graphs: str | bool = "auto", range_rule: str = "auto", **guidance_options) -> TaskResult:
    """Multi-attribute generation: value 1 -> logit >= +logit, 0 -> logit <= -logit; others free (with
    ``implied``, those the named ones imply are set too: `implied_attributes`; ``info["implied"]`` lists them).

    NLBP enforces the one-sided bounds (`edit_bounds`); DPS and classifier guidance aim at +-logit.
    ``logit`` and ``max_abs="auto"``: the SPNN's calibration (`spnn.calibration`; no image to measure the
    reach from, so its ``max_abs``).
    ``info["levels"]``: each bounded attribute's level (`bound_levels`). ``travel``: RePaint time travel
    (length, repeats[, t_min, t_max]) as in `spnn.diffusion.sample`; "auto" takes the one the SPNN's calibration
    stores for generation (``generation_travel``; none stored, or the paper's preset: none), None none (`parse_travel`);
    ``info["travel"]`` says which ran. ``range_rule`` (NLBP): what the range safeguard does to a projection that
    leaves the range (`BackProjection`), "auto" the calibration's (`parse_range_rule`).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n = {n!r}: ask for at least one image (a positive integer)")
    check_pair(prior, op)
    check_graphs(graphs)
    calib = calibration_of(op)
    travel = parse_travel(travel)
    if travel == "auto":  # the SPNN's stored travel; none under the paper's preset (the authors' loop)
        travel = None if get_preset(preset).name == "paper" else parse_travel("auto", calib)
    max_abs = parse_max_abs(max_abs)
    max_abs = calib.max_abs if isinstance(max_abs, str) else max_abs  # "auto"
    range_rule = _range_rule_of(method, range_rule, calib, attributes)
    also = implied_attributes(op, attributes, calib.logit if logit is None else logit, implied)
    logit, levels = bound_levels(calib, logit, attributes, also)
    full = {**attributes, **also}
    p = next(prior.parameters())
    y0 = torch.zeros(n, *op.output_shape, device=p.device, dtype=p.dtype)
    y, mask = edit_target(op, y0, full, logit=logit, levels=levels)
    bounds = (edit_bounds(op, n, full, logit, levels=levels, device=p.device, dtype=p.dtype) if method == "nlbp"
              else None)
    if bounds is not None:
        guidance_options.update(bounds=bounds, max_abs=max_abs, max_move=max_move, range_rule=range_rule)
    guidance = make_guidance(method, op, y, mask=mask, preset=preset, **guidance_options)
    out = sample(prior, n, steps=steps, guidance=guidance, seeds=seeds, preset=preset, precision=precision,
                 travel=travel, progress=progress, graphs=graphs).images
    levels_used = {k: level_of(levels, k, v, logit) for k, v in full.items()}
    return TaskResult(out, y, mask, {"implied": also, "levels": levels_used, "travel": travel,
                                     "range_rule": range_rule}, bounds=bounds)


def edit(prior: Prior, op: SPNNOperator, images: torch.Tensor, attributes: dict[str, float], *,
         t_start: int | None = None, steps: int = 100, seeds=None, logit: float | None = None, method: str = "nlbp",
         max_abs: float | str | None = "auto", max_move: float | None = EDIT_MAX_MOVE, eta: float = EDIT_ETA,
         invert: bool | None = None, preset: str | SamplerPreset = "spnn", precision: str = "auto",
         progress: bool = True, implied: bool = True, travel: tuple | None = None, graphs: str | bool = "auto",
         region: float | str | torch.Tensor | None = "auto", keep: float | str | None = "auto",
         range_rule: str = "auto", **guidance_options) -> TaskResult:
    """Edit real images: set the named attributes, keep the rest (see the module docstring); with ``implied``
    also what the named ones imply (`implied_attributes`; ``info["implied"]`` lists them). With NLBP,
    ``info["reach"]`` holds each image's `edit_reach`, and with ``max_abs="auto"`` ``info["edited"]`` says
    which images were edited (the others, out of the SPNN's reach, come back as given). ``t_start`` and
    ``invert`` both left as None take the start the SPNN's calibration stores for the named attributes
    (`EditCalibration.start_for`), else (or for the one not given) 500 and DDIM inversion; ``info["start"]``
    says which ran. ``logit`` None: the calibration's, with the levels it stores for some attributes
    (`bound_levels`; ``info["levels"]`` gives each bounded attribute's). ``travel``: RePaint time travel
    (`spnn.diffusion.sample`). ``region`` confines the change (`InRegion`, NLBP only): "auto" the threshold the
    calibration stores (none: the whole image), a fraction for `edit_region`, a tensor of 0..1 per pixel, or
    None / "off"; ``info["region"]`` holds the one used. ``keep`` (NLBP): also bound every attribute neither named
    nor implied on the side the original's logit lies, at most ``keep`` deep (`keep_bounds`), so that what the
    edit does not ask for stays as the SPNN read it; "auto" the margin the calibration stores for the named
    attributes (`EditCalibration.keep_for`; none stored: free), None / "off" leaves them free; ``info["keep"]``
    says which ran. ``range_rule`` (NLBP): what the range safeguard does to a projection that leaves [-M, M],
    "halve" its step or "clip" it (`BackProjection`), "auto" the calibration's (`parse_range_rule`)."""
    check_images(images)
    check_pair(prior, op)
    check_graphs(graphs)
    p = next(prior.parameters())
    images = images.to(p)
    max_abs = parse_max_abs(max_abs)
    calib = calibration_of(op)
    range_rule = _range_rule_of(method, range_rule, calib, attributes)
    given = parse_region(region)
    if method != "nlbp" and given is not None and not isinstance(given, str):  # "auto": other methods unconfined
        raise ConfigError(f"a region confines NLBP's projections; {method} has none: use method='nlbp' or "
                          "region=None")
    region = parse_region(region, calib) if method == "nlbp" else None
    keep = parse_keep(keep)
    if keep == "auto":  # the margin stored for the named attributes; other methods have no bounds to add to
        keep = calib.keep_for(attributes) if method == "nlbp" else None
    elif keep is not None and method != "nlbp":
        raise ConfigError(f"keep bounds the attributes NLBP leaves free; {method} has no bounds: use "
                          "method='nlbp' or keep=None")
    if isinstance(region, torch.Tensor):
        check_region(region, images)
    also = implied_attributes(op, attributes, calib.logit if logit is None else logit, implied)
    logit, levels = bound_levels(calib, logit, attributes, also)
    full = {**attributes, **also}
    stored = calib.start_for(attributes) if t_start is None and invert is None else {}  # a start is the pair
    t_start = stored.get("t_start", EDIT_T_START) if t_start is None else t_start
    invert = stored.get("invert", True) if invert is None else invert
    with torch.no_grad():
        y0 = op.A(images)
    y, mask = edit_target(op, y0, full, logit=logit, levels=levels)
    guidance_options.setdefault("lam", gentle_lam)
    bounds, info = None, {"original_logits": y0, "implied": also, "start": {"t_start": int(t_start),
                                                                           "invert": bool(invert)},
                          "levels": {k: level_of(levels, k, v, logit) for k, v in full.items()}, "keep": keep,
                          "range_rule": range_rule}
    if method == "nlbp":
        bounds = edit_bounds(op, len(images), full, logit, levels=levels, device=p.device, dtype=p.dtype)
        if keep is not None:
            bounds = keep_bounds(bounds, y0, keep)
        stepped = full_step(op, images, bounds)
        info["reach"] = reach = edit_reach(op, images, bounds, stepped)
        if region is not None and not isinstance(region, torch.Tensor):
            region = edit_region(images, stepped, region)
        if isinstance(max_abs, str):  # "auto"
            info["edited"] = calib.editable(reach)
            max_abs = calib.max_abs_for(reach)
        guidance_options.update(bounds=bounds, max_abs=max_abs, max_move=max_move, range_rule=range_rule)
    guidance = make_guidance(method, op, y, mask=mask, preset=preset, **guidance_options)
    if region is not None:
        info["region"] = region
        guidance = InRegion(guidance, images, region)
    out = sample(prior, len(images), steps=steps, guidance=guidance, seeds=seeds, x_start=images,
                 t_start=t_start, eta=eta, invert=invert, preset=preset, precision=precision,
                 travel=travel, progress=progress, graphs=graphs).images
    if "edited" in info:
        out = torch.where(info["edited"].view(-1, *[1] * (out.dim() - 1)), out, images)
    return TaskResult(out, y, mask, info, bounds=bounds)


def restore(prior: Prior, op: Operator, images: torch.Tensor, *, method: str = "nlbp", steps: int = 100,
            seeds=None, preset: str | SamplerPreset = "spnn", precision: str = "auto", progress: bool = True,
            graphs: str | bool = "auto", **guidance_options) -> TaskResult:
    """Restoration from y = A(image) (linear: DDNM; non-linear operators work the same way)."""
    check_images(images)
    check_pair(prior, op)
    check_graphs(graphs)
    p = next(prior.parameters())
    with torch.no_grad():
        y = op.A(images.to(p))
    if method in SOLVERS:
        return TaskResult(solve(method, prior, op, y, steps, seeds, precision, progress, guidance_options), y)
    guidance_options.setdefault("lam", 1.0)
    guidance = make_guidance(method, op, y, preset=preset, **guidance_options)
    out = sample(prior, len(images), steps=steps, guidance=guidance, seeds=seeds, preset=preset,
                 precision=precision, progress=progress, graphs=graphs).images
    return TaskResult(out, y)

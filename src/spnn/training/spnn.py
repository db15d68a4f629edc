"""The paper's two-phase SPNN training.

Phase 1 (task, all parameters):
    loss = task(g(x), labels) + w_cycle MSE(g(g+(g(x))), g(x)) + w_recon MSE(g+(g(x)), x),  g+ learned.
Optional robustness in phase 1: noised inputs (``noise_augment``) and adversarial inputs (``adversarial``: L2 PGD
within a per-image radius on the task loss, Madry et al. 2018), so that g's level sets, on which NLBP projects,
are not reachable by small invisible changes (on the 32x32 avatars, whose attributes are a few pixels, radii of
1-8 cost 8-17 points of accuracy and no edit improved: README, editing).
Optional limits on what the logits carry beyond the labels (phase 1): ``recon_noise`` s replaces the reconstruction
term by MSE(g+(g(x) + s n), x), n ~ N(0, I), so only what survives noise of std s is worth encoding; ``invariance``
w adds w MSE(g(x), g(x')) for x' another training image with the same label vector (a different face with the same
attributes), so that g's level sets hold every face with those attributes; ``recon_target="partner"`` makes that x'
the target of the reconstruction term, MSE(g+(g(x)), x'), whose minimiser g+(g(x)) = E[x' | labels of x] keeps the
term's pull towards perceptual level sets without rewarding logits that name the face (in phase 2 too, where it
teaches r the latents of that mean face); ``anchor`` w adds w MSE(g(x), a (2 labels - 1)), a = ``anchor_logit``: a fixed
margin for every logit, so that variation of the logits within a label (which can name the face) costs, and no
rescaling of the logits makes it cheaper (the MSE invariance term is beaten by shrinking every logit); ``swap`` w adds
w MSE(G^-1(g(x'), q(x)), x): the partner's logits decoded with x's latents must give x back, so the logits'
within-label variation moves no pixels (it removes the speckle NLBP draws with partner targets alone).
Over counterfactual pairs (a face and the same face with one part changed, `spnn.data.counterfactual`):
``counterfactual`` w adds w MSE(G^-1(g(b), q(a)), b) (both ways; ``counterfactual_relative``: over MSE(a, b) per
pair), so that the logits draw the attributes, and
``counterfactual_logits`` w adds w mean over the attributes a and b share of (g(a) - g(b))^2, relative to the mean
square logit (so that shrinking every logit does not pay), so that a change of some attributes moves only their
logits and an edit of those logits asks for the counterfactual.
``colour_blends`` w adds w task(g(x_blend), labels_blend) over pixel blends of a face and the same face in another
hair colour (`CounterfactualPairs.blends`): an in-between shade is labelled neither colour, so that a level set of a
hair colour holds that colour and not the shades on the way to it (medium grey, pink).
``judged`` w adds w task(g(x_j), labels_j) over pictures the sampler drew, masked to the attributes every judge read
alike (`spnn.data.judged`, the file ``judged_path``): the SPNN learns not to read what the judges do not see.
Phase 2 (natural inverse, only the r networks):
    loss = w_norm MSE(q(g+(g(x))), q_origin) + w_recon MSE(g+(g(x)), x) + w_cycle MSE(g(g+(g(x))), g(x)).

The cycle term is zero up to rounding for a surjective network (g(g+(y)) = y by construction); it is
kept, with the paper's weight, because it is not exactly zero under bf16 autocast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spnn.data.common import to_tensor_images
from spnn.diagnostics import penrose_report
from spnn.errors import ConfigError
from spnn.io import write_json
from spnn.network import SPNN, load_state_checked
from spnn.training.distributed import is_main
from spnn.training.loop import LoopConfig, TrainLoop

__all__ = ["SPNNTrainConfig", "adversarial_inputs", "phase1_loss", "phase2_loss", "train_spnn", "evaluate_attributes",
           "PHASE_DEFAULTS", "SameLabelPartners"]

PHASE_DEFAULTS = {
    1: {"lr": 2e-4, "epochs": 10, "weights": {"task": 1.0, "cycle": 40.0, "recon": 40.0}},
    2: {"lr": 1e-4, "epochs": 50, "weights": {"norm": 0.1, "recon": 40.0, "cycle": 1.0}},
}
# the optional terms each phase's loss reads (a nonzero one in the other phase's section is refused)
PHASE_TERMS = {1: ("label_smoothing", "noise_augment", "adversarial", "recon_noise", "invariance", "anchor", "swap",
                   "counterfactual", "counterfactual_logits", "colour_blends", "judged"),
               2: ("counterfactual_step",)}


@dataclass
class SPNNTrainConfig:
    loop: LoopConfig = field(default_factory=LoopConfig)
    phase: int = 1
    weights: dict = field(default_factory=dict)  # overrides PHASE_DEFAULTS[phase]["weights"]
    adaptive_weights: bool = False  # phase 1: per-attribute BCE weights from a running error
    adaptive_momentum: float = 0.99
    origin: str = "completion"  # phase 2 norm target: latents of G(0) (authors) or "zero"
    eval_size: int = 1000
    label_smoothing: float = 0.0  # phase 1: BCE targets eps/2 .. 1 - eps/2 keep logits finite
    noise_augment: float = 0.0  # phase 1: add N(0, (u noise_augment)^2), u ~ U(0, 1), to inputs
    adversarial: float = 0.0  # phase 1: L2 radius (per image) of PGD inputs that maximise the task loss
    adversarial_steps: int = 2
    recon_noise: float = 0.0  # phase 1: std of the noise added to g(x) in the reconstruction term
    invariance: float = 0.0  # phase 1: weight of MSE(g(x), g(x')) over same-label pairs
    recon_target: str = "self"  # reconstruct x itself or "partner", a same-label training image
    anchor: float = 0.0  # phase 1: weight of MSE(g(x), anchor_logit (2 labels - 1)) (binary attributes)
    anchor_logit: float = 3.0
    swap: float = 0.0  # phase 1: weight of MSE(G^-1(g(x'), q(x)), x) over same-label pairs (x' a partner)
    counterfactual: float = 0.0  # phase 1: weight of MSE(G^-1(g(x_cf), q(x)), x_cf), x_cf x with one part changed
    counterfactual_batch: int = 64  # counterfactual pairs per step
    counterfactual_relative: bool = False  # phase 1: each pair's decoding error over MSE(a, b) (small parts count)
    counterfactual_logits: float = 0.0  # phase 1: weight of MSE(g(x), g(x_cf)) over the kept attributes / mean g^2
    colour_blends: float = 0.0  # phase 1: weight of the task loss on blends of two hair colours (counterfactual_batch)
    counterfactual_step: float = 0.0  # phase 2: weight of MSE(one learned NLBP step from x to its edited logits, x_cf)
    judged: float = 0.0  # phase 1: weight of the task loss on judged sampler pictures (judged_path), masked
    judged_path: str = ""  # a file of `spnn.data.judged.save_judged`
    judged_batch: int = 64  # judged pictures per step

    def __post_init__(self):
        for name in ("label_smoothing", "noise_augment", "adversarial", "recon_noise", "invariance", "anchor", "swap",
                     "counterfactual", "counterfactual_logits", "colour_blends", "counterfactual_step", "judged"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.anchor_logit, (int, float)) or not self.anchor_logit > 0:
            raise ConfigError(f"anchor_logit must be a number > 0, got {self.anchor_logit!r}")
        if not isinstance(self.counterfactual_relative, bool):
            raise ConfigError(f"counterfactual_relative must be true or false, got {self.counterfactual_relative!r}")
        if not isinstance(self.counterfactual_batch, int) or self.counterfactual_batch < 1:
            raise ConfigError(f"counterfactual_batch must be an integer >= 1, got {self.counterfactual_batch!r}")
        if not isinstance(self.judged_batch, int) or self.judged_batch < 1:
            raise ConfigError(f"judged_batch must be an integer >= 1, got {self.judged_batch!r}")
        if self.judged and not self.judged_path:
            raise ConfigError("judged > 0 needs judged_path: a file of spnn.data.judged.save_judged")
        if self.recon_target not in ("self", "partner"):
            raise ConfigError(f"recon_target must be 'self' or 'partner', got {self.recon_target!r}")
        other = [n for n in PHASE_TERMS[2 if self.phase == 1 else 1] if getattr(self, n)]
        if self.phase in (1, 2) and other:  # a term of the other phase would be silently ignored
            raise ConfigError(f"{', '.join(other)}: a phase-{3 - self.phase} option given for phase {self.phase}; "
                              f"move it to the phase{3 - self.phase} section")

    @property
    def needs_partners(self) -> bool:
        return self.recon_target == "partner" or (self.phase == 1 and (self.invariance > 0 or self.swap > 0))

    def term_weights(self) -> dict:
        return {**PHASE_DEFAULTS[self.phase]["weights"], **self.weights}


class AdaptiveWeights:
    """Per-attribute BCE weights proportional to a running mean of each attribute's loss (mean 1)."""

    def __init__(self, n: int, momentum: float, device):
        self.ema = torch.ones(n, device=device)
        self.momentum = momentum

    def __call__(self, per_attr: torch.Tensor) -> torch.Tensor:
        self.ema.mul_(self.momentum).add_((1 - self.momentum) * per_attr.detach())
        return self.ema / self.ema.mean()


def task_loss(logits: torch.Tensor, labels: torch.Tensor, adaptive: AdaptiveWeights | None = None,
              smoothing: float = 0.0):
    """BCE for multi-label {0, 1} float labels (optionally per-attribute weighted, label smoothing), CE for
    class indices."""
    if labels.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)
    if smoothing:
        labels = labels * (1 - smoothing) + smoothing / 2
    per_attr = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0)
    if adaptive is not None:
        return (per_attr * adaptive(per_attr)).mean()
    return per_attr.mean()


def adversarial_inputs(net: SPNN, x: torch.Tensor, labels: torch.Tensor, radius: float, steps: int = 2,
                       smoothing: float = 0.0) -> torch.Tensor:
    """x + delta, |delta|_2 <= radius per image, by ``steps`` normalised-gradient ascent steps (size 2.5 radius /
    steps) on the task loss (PGD, Madry et al. 2018). No parameter gradients are accumulated."""
    if radius <= 0 or steps < 1:
        raise ConfigError(f"adversarial radius and steps must be positive, got {radius} and {steps}")
    delta = torch.zeros_like(x, requires_grad=True)
    size = 2.5 * radius / steps
    for _ in range(steps):
        (grad,) = torch.autograd.grad(task_loss(net(x + delta), labels, smoothing=smoothing), delta)
        delta = delta + size * grad / _norm(grad).clamp_min(1e-12)
        delta = (delta * (radius / _norm(delta).clamp_min(1e-12)).clamp(max=1.0)).detach().requires_grad_(True)
    return (x + delta).detach()


def _norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


class SameLabelPartners:
    """For each label vector of a batch, a random training image with that label vector (the drawn image may be the
    batch's own: 1 in the group's size; ``paired`` is the fraction of training images with another). Draws use
    torch's global random state, which training checkpoints and restores, so a resumed run draws the same partners.

    >>> import numpy as np
    >>> from spnn.data.common import ArrayDataset
    >>> ds = ArrayDataset(np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1).repeat(3, 3), [[0], [1], [0], [1]], ["a"])
    >>> partners = SameLabelPartners(ds)
    >>> picked = partners(torch.tensor([[0.0], [1.0], [0.0]]))[:, 0, 0, 0] * 127.5 + 127.5
    >>> set(picked[[0, 2]].round().tolist()) <= {0.0, 2.0}, picked[1].round().item() in (1.0, 3.0)
    (True, True)
    """

    def __init__(self, dataset):
        labels = np.asarray(dataset.labels).astype(np.uint8)
        self.images = dataset.images
        unique, group, counts = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
        group = group.reshape(-1)
        self.order = np.argsort(group, kind="stable")  # image indices, grouped by label vector
        self.starts, self.sizes = np.cumsum(counts) - counts, counts
        self.group_of = {row.tobytes(): g for g, row in enumerate(unique)}
        self.paired = float((counts[group] > 1).mean())  # fraction of images with a partner

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        rows = labels.detach().cpu().numpy().round().astype(np.uint8)
        groups = [self.group_of.get(row.tobytes()) for row in rows]
        if None in groups:
            raise ConfigError("a batch label vector is not in the training set; partners come from it")
        groups = np.array(groups)
        offset = (torch.rand(len(groups), dtype=torch.float64).numpy() * self.sizes[groups]).astype(np.int64)
        picks = self.order[self.starts[groups] + np.minimum(offset, self.sizes[groups] - 1)]
        return to_tensor_images(self.images[picks]).to(labels.device)


def phase1_loss(net: SPNN, x, labels, w: dict, adaptive=None, smoothing: float = 0.0, noise: float = 0.0,
                adversarial: float = 0.0, adversarial_steps: int = 2, recon_noise: float = 0.0,
                partners: torch.Tensor | None = None, recon_target: str = "self", anchor_logit: float = 3.0,
                counterfactuals: tuple[torch.Tensor, ...] | None = None, counterfactual_relative: bool = False,
                blends: tuple[torch.Tensor, torch.Tensor] | None = None,
                judged: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None):
    """Phase-1 loss and its terms; ``partners`` (same-label images, one per row) feed the invariance term and, with
    ``recon_target="partner"``, the reconstruction target; ``counterfactuals`` (originals, counterfactuals: the
    same faces with one part changed, `spnn.data.counterfactual`) feed the counterfactual term, each one's logits
    decoded with the other's latents: 0.5 [MSE(G^-1(g(b), q(a)), b) + MSE(G^-1(g(a), q(b)), a)]; with
    ``counterfactual_relative`` each pair's error is divided by MSE(a, b), so that a change of a few pixels weighs
    as much as one of the hair. A third entry, the 0/1 mask of the attributes each pair shares, feeds the
    counterfactual-logits term: the mean of (g(a) - g(b))^2 over those attributes, divided by the mean of
    (g(a)^2 + g(b)^2) / 2 (scale-free). ``blends`` (images, labels: `CounterfactualPairs.blends`) feed the
    colour-blends term, the task loss on them. ``judged`` (images, labels, mask: `JudgedImages`) feeds the judged
    term, the binary cross-entropy over the masked entries (label smoothing as the task's)."""
    def noised(t):
        return t + noise * torch.rand(len(t), 1, 1, 1, device=t.device, dtype=t.dtype) * torch.randn_like(t)

    if noise:
        x = noised(x)
    if adversarial:
        x = adversarial_inputs(net, x, labels, adversarial, adversarial_steps, smoothing)
    if partners is not None and w.get("swap"):
        logits, latents = net.complete(x)
    else:
        logits = net(x)
    y_recon = logits + recon_noise * torch.randn_like(logits) if recon_noise else logits
    xr = net.pinv(y_recon, mode="learned")
    target = partners if recon_target == "partner" and partners is not None else x
    terms = {"task": task_loss(logits, labels, adaptive, smoothing), "recon": F.mse_loss(xr, target)}
    if w.get("cycle"):
        terms["cycle"] = F.mse_loss(net(xr), y_recon)
    if w.get("anchor"):
        if labels.shape != logits.shape:
            raise ConfigError("the anchor term needs binary attribute labels, one per logit")
        terms["anchor"] = F.mse_loss(logits, anchor_logit * (2 * labels.to(logits.dtype) - 1))
    if partners is not None and (w.get("swap") or w.get("invariance")):  # one pass over the partners for both
        partner_logits = net(noised(partners) if noise else partners)
        if w.get("swap"):  # a same-label partner's logits with x's latents give x back
            terms["swap"] = F.mse_loss(net.inverse(partner_logits, latents), x)
        if w.get("invariance"):
            terms["invariance"] = F.mse_loss(logits, partner_logits)
    if counterfactuals is not None and (w.get("counterfactual") or w.get("counterfactual_logits")):
        a, b, *kept = counterfactuals
        (ya, qa), (yb, qb) = net.complete(a), net.complete(b)
        if w.get("counterfactual"):
            def err(decoded, target):  # per pair; relative: over the pair's own distance, so a mouth counts as hair
                e = (decoded - target).pow(2).flatten(1).mean(1)
                return e / (a - b).pow(2).flatten(1).mean(1).clamp(min=1e-4) if counterfactual_relative else e

            terms["counterfactual"] = 0.5 * (err(net.inverse(yb, qa), b) + err(net.inverse(ya, qb), a)).mean()
        if w.get("counterfactual_logits"):
            if not kept or kept[0].shape != ya.shape:
                raise ConfigError("the counterfactual-logits term needs a mask of the kept attributes, one per logit")
            # relative to the logits' mean square, so that shrinking every logit does not pay
            spread = ((ya - yb) ** 2 * kept[0]).sum() / kept[0].sum().clamp(min=1)
            terms["counterfactual_logits"] = spread / (0.5 * (ya ** 2 + yb ** 2).mean()).clamp(min=1e-8)
    if blends is not None and w.get("colour_blends"):
        terms["colour_blends"] = task_loss(net(blends[0]), blends[1], None, smoothing)
    if judged is not None and w.get("judged"):
        xj, yj, mj = judged
        yj = yj * (1 - smoothing) + smoothing / 2 if smoothing else yj
        bce = F.binary_cross_entropy_with_logits(net(xj), yj, reduction="none")
        terms["judged"] = (bce * mj).sum() / mj.sum().clamp(min=1)
    loss = sum(w[k] * v for k, v in terms.items())
    return loss, {k: v.detach() for k, v in terms.items()}


def phase2_loss(net: SPNN, x, w: dict, origin: list[torch.Tensor] | None, recon_target: torch.Tensor | None = None,
                counterfactuals: tuple[torch.Tensor, ...] | None = None):
    """Phase-2 loss and its terms; ``recon_target``: what g+(g(x)) should reconstruct (default ``x``).

    ``counterfactuals`` (originals a, counterfactuals b, the 0/1 mask of the attributes the two share) feed the
    counterfactual-step term: one learned NLBP step from a to its edited logits y_e (a's logits, the changed
    attributes' taken from b), G^-1([y_e | q(a) + Z(y_e) - Z(g(a))]), must draw b. Only r moves in phase 2, so g
    and the identities stay exact; the term teaches the latents' move what an edit of those logits draws."""
    with torch.no_grad():
        logits = net(x)
    xr, latents = net.pinv(logits, mode="learned", return_latents=True)
    flat = torch.cat([z.reshape(len(x), -1) for z in latents], 1)
    target = (torch.zeros_like(flat) if origin is None
              else torch.cat([z.reshape(1, -1) for z in origin], 1).expand_as(flat))
    terms = {"norm": F.mse_loss(flat, target), "recon": F.mse_loss(xr, x if recon_target is None else recon_target)}
    if w.get("cycle"):
        terms["cycle"] = F.mse_loss(net(xr), logits)
    if counterfactuals is not None and w.get("counterfactual_step"):
        from spnn.operators import SPNNOperator

        a, b, same = counterfactuals
        with torch.no_grad():  # g is frozen in phase 2: only the step's latent move (r) carries a gradient
            completion = net.complete(a)
            edited = torch.where(same.bool(), completion[0], net(b))
        stepped = SPNNOperator(net, mode="learned").back_project(a, edited, completion=completion)  # the sampler's step
        terms["counterfactual_step"] = F.mse_loss(stepped, b)
    loss = sum(w[k] * v for k, v in terms.items())
    return loss, {k: v.detach() for k, v in terms.items()}


@torch.no_grad()
def evaluate_attributes(net: SPNN, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> dict:
    """Mean attribute accuracy, per-attribute accuracy and all-correct rate (threshold logits at 0)."""
    correct = []
    for i in range(0, len(images), batch):
        pred = net(images[i:i + batch]) > 0
        correct.append(pred == labels[i:i + batch].bool())
    c = torch.cat(correct).float()
    per = c.mean(0)
    out = {"accuracy": float(per.mean()), "all_correct": float(c.prod(1).mean())}
    if net.attribute_names:
        out["per_attribute"] = {n: round(float(a), 4) for n, a in zip(net.attribute_names, per)}
    return out


def train_spnn(net: SPNN, train_set, val_set, cfg: SPNNTrainConfig, out_dir: str | Path,
               device: str | torch.device = "cpu", resume: bool = True, progress: bool = True) -> dict:
    """Run one phase; writes checkpoints, ``phase{N}.safetensors`` and ``metrics-phase{N}.json``."""
    out_dir = Path(out_dir)
    phase_dir = out_dir / f"phase{cfg.phase}"
    net.to(device)
    net.edit_calibration = None  # measured for the weights before training: it does not carry over
    w = cfg.term_weights()
    partners = SameLabelPartners(train_set) if cfg.needs_partners else None
    if cfg.phase == 1:
        for p in net.parameters():
            p.requires_grad_(True)
        adaptive = (AdaptiveWeights(net.output_shape[0], cfg.adaptive_momentum, device)
                    if cfg.adaptive_weights else None)
        params = list(net.parameters())
        w["invariance"], w["anchor"], w["swap"] = cfg.invariance, cfg.anchor, cfg.swap
        w["counterfactual"], w["counterfactual_logits"] = cfg.counterfactual, cfg.counterfactual_logits
        w["colour_blends"], w["judged"] = cfg.colour_blends, cfg.judged
        judged_images = None
        if cfg.judged:
            from spnn.data.judged import JudgedImages

            judged_images = JudgedImages(cfg.judged_path, getattr(train_set, "attribute_names", None))
        pairs = colours = None
        if cfg.counterfactual or cfg.counterfactual_logits or cfg.colour_blends:
            from spnn.data.counterfactual import HAIR_COLOURS, CounterfactualPairs

            pairs = CounterfactualPairs(train_set)
            names = list(getattr(train_set, "attribute_names", None) or net.attribute_names or [])
            colours = [names.index(a) for a in HAIR_COLOURS if a in names]

        def loss_fn(batch):
            train = net.training
            cf = blends = judged = None
            if pairs is not None and train and (cfg.counterfactual or cfg.counterfactual_logits):
                cf = tuple(t.to(batch[0].device) for t in pairs(cfg.counterfactual_batch,
                                                                  kept=cfg.counterfactual_logits > 0))
            if pairs is not None and train and cfg.colour_blends:
                blends = tuple(t.to(batch[0].device) for t in pairs.blends(cfg.counterfactual_batch, colours))
            if judged_images is not None and train:
                judged = tuple(t.to(batch[0].device) for t in judged_images(cfg.judged_batch))
            return phase1_loss(net, batch[0], batch[1], w, adaptive, cfg.label_smoothing,
                               cfg.noise_augment if train else 0.0, cfg.adversarial if train else 0.0,
                               cfg.adversarial_steps, cfg.recon_noise if train else 0.0,
                               partners(batch[1]) if partners is not None and train else None, cfg.recon_target,
                               cfg.anchor_logit, cf, cfg.counterfactual_relative, blends, judged)
    elif cfg.phase == 2:
        for name, p in net.named_parameters():
            p.requires_grad_(".r." in f".{name}")
        params = [p for p in net.parameters() if p.requires_grad]
        origin = None
        if cfg.origin == "completion":
            with torch.no_grad():
                origin = [z.detach() for z in net.origin_latents(1)]
        w["counterfactual_step"] = cfg.counterfactual_step
        steps = None
        if cfg.counterfactual_step:
            from spnn.data.counterfactual import CounterfactualPairs

            steps = CounterfactualPairs(train_set)

        def loss_fn(batch):
            target = partners(batch[1]) if partners is not None and net.training else None
            cf = (tuple(t.to(batch[0].device) for t in steps(cfg.counterfactual_batch, kept=True))
                  if steps is not None and net.training else None)
            return phase2_loss(net, batch[0], w, origin, target, cf)
    else:
        raise ConfigError(f"phase must be 1 or 2, got {cfg.phase}")

    val_x, val_y = (t.to(device) for t in val_set.tensors(limit=cfg.eval_size))

    def evaluate() -> dict:
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn([val_x, val_y])[0])
        metrics = {"val_loss": val_loss, **evaluate_attributes(net, val_x, val_y)}
        metrics.pop("per_attribute", None)
        net.train()
        return metrics

    def save(path, meta):
        net.save(path, {**meta, "phase": cfg.phase, "train_config": asdict(cfg)})

    def load(path):
        from spnn.io import load_tensors

        tensors, _ = load_tensors(path, device)
        load_state_checked(net, tensors, str(path))

    loop = TrainLoop(cfg.loop, params, loss_fn, train_set, phase_dir, save, load, evaluate, device,
                     name=f"phase{cfg.phase}")
    history = loop.run(resume=resume, progress=progress)
    metrics = {"phase": cfg.phase, "steps": loop.step, "total_steps": loop.total_steps,
               "finished": loop.step >= loop.total_steps}
    if is_main():
        net.eval()
        metrics["val"] = evaluate_attributes(net, val_x, val_y)
        x = val_x[:64].double()
        metrics["penrose_float64"] = penrose_report(net.double(), x)
        net.float()
        metrics["penrose_float32"] = penrose_report(net, val_x[:64])
        metrics["history_tail"] = history[-5:]
        if metrics["finished"]:
            net.save(out_dir / f"phase{cfg.phase}.safetensors", {"phase": cfg.phase})
        write_json(out_dir / f"metrics-phase{cfg.phase}.json", metrics, indent=2)
    return metrics

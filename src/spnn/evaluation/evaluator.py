"""An independent attribute evaluator: a conventional CNN (not an SPNN, no shared weights) that scores
generated or edited images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spnn.checks import check_shape
from spnn.errors import CheckpointError, ConfigError
from spnn.io import check_header, load_tensors, read_metadata, save_tensors

__all__ = ["AttributeEvaluator", "EvaluatorEnsemble", "load_evaluator_file", "train_evaluator", "HEADS"]

FORMAT = "spnn.AttributeEvaluator/1"
ENSEMBLE_FORMAT = "spnn.EvaluatorEnsemble/1"


HEADS = ("pool", "spatial")


class _Judge(nn.Module):
    """What every evaluator offers on top of ``forward`` (logits) and ``pooled`` (features): batched reads in eval
    mode on the evaluator's device, returned on the input's."""

    @torch.no_grad()
    def _batched(self, fn, x: torch.Tensor, batch: int) -> torch.Tensor:
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = torch.cat([fn(x[i:i + batch].to(device)) for i in range(0, len(x), batch)])
        self.train(was)
        return out.to(x.device)

    def predict(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Logits in eval mode, batched; computed on the evaluator's device, returned on ``x``'s."""
        return self._batched(self, x, batch)

    def embed(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """The evaluator's pooled features (its last layer's input) in eval mode, batched, on ``x``'s device."""
        return self._batched(self.pooled, x, batch)

    def save(self, path: str | os.PathLike, meta: dict | None = None) -> None:
        """Weights and ``config()`` (what `load_evaluator_file` rebuilds it from) in one .safetensors."""
        save_tensors(path, self.state_dict(), {**(meta or {}), "evaluator_config": self.config()})


class AttributeEvaluator(_Judge):
    """VGG-style CNN: stages of two 3x3 conv + BatchNorm + ReLU, 2x max-pool, then a head: ``"pool"``, global
    average and linear (where a feature is does not matter); ``"spatial"``, a 1x1 convolution to 16 channels and a
    linear map of the whole last map (where it is does: bangs on the forehead, a hat above it).

    >>> ev = AttributeEvaluator((3, 32, 32), ["Smiling", "Bald"], widths=(8, 16))
    >>> ev(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 2])
    >>> AttributeEvaluator((3, 32, 32), ["Smiling"], widths=(8, 16), head="spatial")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1])
    """

    def __init__(self, input_shape: Sequence[int], attribute_names: Sequence[str],
                 widths: Sequence[int] = (32, 64, 128), head: str = "pool"):
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"unknown evaluator head {head!r}; choose one of {HEADS}")
        self.input_shape = tuple(int(v) for v in input_shape)
        self.attribute_names = list(attribute_names)
        self.widths = [int(w) for w in widths]
        self.head_kind = head
        layers: list[nn.Module] = []
        c = self.input_shape[0]
        for i, w in enumerate(self.widths):
            for _ in range(2):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
            if i < len(self.widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        if head == "pool":
            self.head = nn.Linear(c, len(self.attribute_names))
        else:
            side = [s // 2 ** (len(self.widths) - 1) for s in self.input_shape[1:]]
            self.squeeze = nn.Conv2d(c, 16, 1)
            self.head = nn.Linear(16 * side[0] * side[1], len(self.attribute_names))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input: averaged features, or the squeezed map flattened."""
        h = self.features(x)
        return h.mean((2, 3)) if self.head_kind == "pool" else F.relu(self.squeeze(h)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attribute logits for images in [-1, 1]."""
        check_shape(x, self.input_shape, "evaluator input")
        return self.head(self.pooled(x))

    def config(self) -> dict:
        return {"format": FORMAT, "input_shape": list(self.input_shape),
                "attribute_names": self.attribute_names, "widths": self.widths, "head": self.head_kind}


    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> AttributeEvaluator:
        from spnn.network import load_state_checked

        meta = read_metadata(path)
        cfg = meta.get("evaluator_config")
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not an spnn attribute evaluator file (no evaluator description in its "
                                  "metadata); give the file written by `spnn evaluator train`")
        with torch.device("meta"):
            skeleton = _skeleton(path, cfg)
        check_header(path, skeleton.state_dict())
        tensors, _ = load_tensors(path, map_location)
        ev = _skeleton(path, cfg)
        load_state_checked(ev, tensors, str(path))
        return ev.eval().to(map_location)


class EvaluatorEnsemble(_Judge):
    """Several evaluators of the same attributes read as one: logits averaged, features concatenated. Evaluators
    trained alike from different seeds agree on real faces and disagree on edited ones, which lie off the data
    (one judge's verdicts on the same edits move by up to 0.28 with its seed, `docs/findings.md`); their mean is
    the steadier instrument.

    >>> a, b = (AttributeEvaluator((3, 8, 8), ["Smiling"], widths=(4,)) for _ in range(2))
    >>> x = torch.zeros(2, 3, 8, 8)
    >>> torch.allclose(EvaluatorEnsemble([a, b])(x), (a(x) + b(x)) / 2), EvaluatorEnsemble([a, b]).embed(x).shape
    (True, torch.Size([2, 8]))
    """

    def __init__(self, members: Sequence[AttributeEvaluator]):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, AttributeEvaluator) for m in members):
            raise ConfigError("an evaluator ensemble takes one or more AttributeEvaluators")
        first = members[0]
        for m in members[1:]:
            if m.attribute_names != first.attribute_names or m.input_shape != first.input_shape:
                raise ConfigError("ensemble members must read the same images and attributes; got "
                                  f"{m.input_shape} / {len(m.attribute_names)} attributes and {first.input_shape} / "
                                  f"{len(first.attribute_names)}: build it from evaluators of one dataset")
        self.members = nn.ModuleList(members)
        self.input_shape, self.attribute_names = first.input_shape, list(first.attribute_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' mean logits for images in [-1, 1]."""
        return torch.stack([m(x) for m in self.members]).mean(0)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The members' features side by side."""
        return torch.cat([m.pooled(x) for m in self.members], 1)

    def config(self) -> dict:
        return {"format": ENSEMBLE_FORMAT, "members": [m.config() for m in self.members]}



def _skeleton(path, cfg: dict) -> AttributeEvaluator:
    try:
        return AttributeEvaluator(cfg["input_shape"], cfg["attribute_names"], cfg["widths"], cfg.get("head", "pool"))
    except Exception as e:  # noqa: BLE001 - any malformed description
        raise CheckpointError(f"{path}: invalid evaluator description ({type(e).__name__}: {e})") from None


def load_evaluator_file(path: str | os.PathLike, map_location="cpu") -> AttributeEvaluator | EvaluatorEnsemble:
    """An evaluator or an evaluator ensemble written by `spnn evaluator train` / `spnn evaluator ensemble`."""
    from spnn.network import load_state_checked

    cfg = read_metadata(path).get("evaluator_config")
    if isinstance(cfg, dict) and cfg.get("format") == FORMAT:
        return AttributeEvaluator.load(path, map_location)
    if not (isinstance(cfg, dict) and cfg.get("format") == ENSEMBLE_FORMAT and isinstance(cfg.get("members"), list)
            and cfg["members"] and all(isinstance(m, dict) for m in cfg["members"])):
        raise CheckpointError(f"{path}: not an spnn attribute evaluator file (no evaluator description in its "
                              "metadata); give a file written by `spnn evaluator train` or `spnn evaluator ensemble`")
    with torch.device("meta"):
        skeleton = EvaluatorEnsemble([_skeleton(path, m) for m in cfg["members"]])
    check_header(path, skeleton.state_dict())
    tensors, _ = load_tensors(path, map_location)
    ensemble = EvaluatorEnsemble([_skeleton(path, m) for m in cfg["members"]])
    load_state_checked(ensemble, tensors, str(path))
    return ensemble.eval().to(map_location)


def train_evaluator(train_set, val_set, out_dir: str | Path, *, epochs: float = 8, batch_size: int = 128,
                    lr: float = 2e-3, widths: Sequence[int] = (32, 64, 128), seed: int = 0, device="cpu",
                    resume: bool = True, progress: bool = True, max_steps: int | None = None,
                    warmup: int = 100, head: str = "pool", cast: float = 0.0) -> dict:
    """Train with BCE, light augmentation (random 1-pixel shifts; with ``cast`` c, also a random colour cast per
    image, x -> g x + o with per-channel gain g in [1 - c, 1 + c] and offset o in [-c, c], so that a cast is not
    read as an attribute); returns validation metrics."""
    if not 0 <= cast < 1:
        raise ConfigError(f"cast = {cast!r}: a colour-cast strength in [0, 1)")
    from spnn.evaluation.metrics import attribute_agreement
    from spnn.network import load_state_checked
    from spnn.training.loop import LoopConfig, TrainLoop

    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    ev = AttributeEvaluator(train_set.image_shape, train_set.attribute_names, widths, head).to(device)
    val_x, val_y = (t.to(device) for t in val_set.tensors(limit=2000))
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(batch):
        x, y = batch
        dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
        x = torch.roll(x, (dx, dy), dims=(2, 3))
        if cast:
            gain, offset = ((torch.rand(2, len(x), x.shape[1], 1, 1, generator=gen) * 2 - 1) * cast).to(x)
            x = (x * (1 + gain) + offset).clamp(-1, 1)
        loss = F.binary_cross_entropy_with_logits(ev(x), y)
        return loss, {}

    def evaluate():
        logits = ev.predict(val_x)
        agreement = attribute_agreement(logits, val_y)
        return {"val_loss": float(F.binary_cross_entropy_with_logits(logits, val_y)),
                "accuracy": agreement["mean"], "min_attribute": min(agreement["per_attribute"])}

    def load(path):
        tensors, _ = load_tensors(path, device)
        load_state_checked(ev, tensors, str(path))

    cfg = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup=warmup, decay_start=0.3, seed=seed,
                     log_every=100, ckpt_every=500, max_steps=max_steps)
    loop = TrainLoop(cfg, list(ev.parameters()), loss_fn, train_set, out_dir,
                     lambda p, m: ev.save(p, m), load, evaluate, device, name="evaluator")
    loop.run(resume=resume, progress=progress)
    ev.eval()
    result = {"steps": loop.step, "finished": loop.step >= loop.total_steps, **evaluate()}
    result["per_attribute"] = dict(zip(ev.attribute_names, attribute_agreement(ev.predict(val_x), val_y)
                                       ["per_attribute"]))
    if result["finished"]:
        ev.save(out_dir / "evaluator.safetensors", {"val_accuracy": result["accuracy"]})
    return result

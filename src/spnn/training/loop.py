"""A small training loop shared by SPNN, prior and evaluator training.

- Adam, warm-up then constant until ``decay_start`` of training then linear decay to 0, gradient clipping;
- a fixed data order per (seed, epoch), so ``resume`` continues a killed run on the same trajectory;
- atomic checkpoints every ``ckpt_every`` steps: ``last.safetensors`` (weights) + ``last.state.safetensors``
  (optimiser, schedule, step, history: tensors plus JSON, no pickle, so a checkpoint folder someone sends
  you cannot run code); ``best.safetensors`` by validation loss; a resume refuses a state written with
  other settings that shape the trajectory (batch size, epochs, learning rate, ...);
- N processes (torchrun / `--nproc`): each takes a 1/N shard of every global batch and gradients
  are averaged, so N processes follow the 1-process trajectory with the combined batch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from spnn.checks import check_fields
from spnn.errors import CheckpointError, ConfigError
from spnn.io import load_state, read_metadata, safe_torch_load, save_state
from spnn.training.distributed import all_mean, average_gradients, barrier, world

__all__ = ["LoopConfig", "TrainLoop", "lr_factor", "TRAJECTORY_KEYS"]

# settings that define the training trajectory: a resume with other values would silently change it
TRAJECTORY_KEYS = ("epochs", "batch_size", "lr", "betas", "weight_decay", "warmup", "decay_start", "clip", "seed",
                   "bf16", "extra")


@dataclass
class LoopConfig:
    epochs: float = 10
    batch_size: int = 256  # global batch, split across processes
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup: int = 200
    decay_start: float = 0.4
    clip: float | None = 1.0
    seed: int = 556
    log_every: int = 50
    ckpt_every: int = 500
    eval_every: int | None = None  # steps; default once per epoch
    bf16: bool = False
    max_steps: int | None = None  # stop (resumably) after this many steps in this invocation
    num_workers: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> LoopConfig:
        check_fields(cls, d, "training options")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def _plain(v):
    """Tuples and lists compare equal (JSON has no tuples)."""
    return list(v) if isinstance(v, (tuple, list)) else v


def lr_factor(step: int, total: int, warmup: int, decay_start: float) -> float:
    """Warm-up (linear from 1/warmup), constant until decay_start * total, then linear to 0."""
    if step < warmup:
        return (step + 1) / warmup
    start = int(decay_start * total)
    if step < start or total <= start:
        return 1.0
    return max(0.0, (total - step) / (total - start))


class TrainLoop:
    """Runs ``loss_fn(batch) -> (loss, {term: value})`` over ``dataset`` with the given ``params``.

    ``save(path, meta)`` writes the model; ``load(path)`` restores it; ``evaluate()`` returns a dict
    with at least ``val_loss`` (optional).
    """

    def __init__(self, cfg: LoopConfig, params: list[torch.nn.Parameter],
                 loss_fn: Callable, dataset: Dataset, out_dir: str | Path,
                 save: Callable[[Path, dict], None], load: Callable[[Path], None],
                 evaluate: Callable[[], dict] | None = None, device: str | torch.device = "cpu",
                 on_step: Callable[[int], None] | None = None, name: str = "train"):
        self.cfg = cfg
        self.params = [p for p in params if p.requires_grad]
        self.loss_fn = loss_fn
        self.dataset = dataset
        self.out = Path(out_dir)
        self.save_model, self.load_model = save, load
        self.evaluate = evaluate
        self.device = torch.device(device)
        self.on_step = on_step
        self.name = name
        self.rank, self.world = world()
        if cfg.batch_size % self.world:
            raise ConfigError(f"batch_size {cfg.batch_size} must be divisible by the {self.world} processes")
        self.steps_per_epoch = len(dataset) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(f"dataset of {len(dataset)} items is smaller than one batch of {cfg.batch_size}")
        self.total_steps = max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, self.total_steps, cfg.warmup, cfg.decay_start))
        self.step = 0
        self.best = math.inf
        self.history: list[dict] = []
        self._tensors = dataset.tensors() if getattr(dataset, "in_memory", False) else None

    # data ----------------------------------------------------------------------------------
    def _batches(self, epoch: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch)
        perm = torch.randperm(len(self.dataset), generator=gen)
        b = self.cfg.batch_size
        return [perm[i * b:(i + 1) * b][self.rank::self.world] for i in range(self.steps_per_epoch)]

    def _iterate(self, epoch: int, skip: int):
        batches = self._batches(epoch)[skip:]
        if self._tensors is not None:
            for idx in batches:
                yield [t[idx] for t in self._tensors]
        else:
            loader = DataLoader(self.dataset, batch_sampler=[i.tolist() for i in batches],
                                num_workers=self.cfg.num_workers, collate_fn=default_collate)
            yield from loader

    # checkpoints ---------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out / "last.safetensors"

    @property
    def state_path(self) -> Path:
        return self.out / "last.state.safetensors"

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        meta = {"step": self.step, "name": self.name}
        state = {"step": self.step, "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                 "best": self.best, "history": self.history, "config": asdict(self.cfg),
                 "torch_rng": torch.get_rng_state()}
        save_state(self.state_path, state)
        self.save_model(self.last_path, meta)

    def _read_state(self) -> dict | None:
        legacy = self.out / "last.state.pt"
        if self.state_path.exists():
            return load_state(self.state_path)
        if legacy.exists():  # written by spnn <= 0.1: read with the restricted unpickler only
            return safe_torch_load(legacy)
        return None

    def resume(self) -> bool:
        """Continue from ``last.*`` in the output folder; False if there is none."""
        state = self._read_state()
        if state is None:
            if self.last_path.exists():
                raise CheckpointError(f"{self.last_path} exists but its training state (last.state.safetensors) "
                                      "does not; delete last.safetensors to restart, or pass --no-resume")
            return False
        if not self.last_path.exists():
            raise CheckpointError(f"{self.out}: training state without weights (last.safetensors missing); "
                                  "delete last.state.* to restart, or pass --no-resume")
        saved = state.get("config", {})
        now = asdict(self.cfg)
        changed = [k for k in TRAJECTORY_KEYS if k in saved and _plain(saved[k]) != _plain(now[k])]
        if changed:
            diffs = ", ".join(f"{k} {saved[k]!r} -> {now[k]!r}" for k in changed)
            raise CheckpointError(f"{self.out}: the checkpoint was trained with other settings ({diffs}); resuming "
                                  "would change its trajectory. Use the same settings, another --out, or --no-resume")
        self.load_model(self.last_path)
        if read_metadata(self.last_path).get("step") != state["step"]:
            raise CheckpointError(f"{self.out}: weights and training state are from different steps; "
                                  "the run was killed while writing; delete last.* to restart")
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        return True

    # the loop ------------------------------------------------------------------------------
    def run(self, resume: bool = True, progress: bool = True) -> list[dict]:
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.resume() and self.rank == 0:
            print(f"[{self.name}] resumed at step {self.step}/{self.total_steps}")
        cfg = self.cfg
        stop_at = self.total_steps if cfg.max_steps is None else min(self.total_steps, self.step + cfg.max_steps)
        eval_every = cfg.eval_every or self.steps_per_epoch
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.name, disable=not progress or self.rank,
                   unit="step", dynamic_ncols=True)
        t0, seen, sums = time.time(), 0, {}
        while self.step < stop_at:
            epoch, skip = divmod(self.step, self.steps_per_epoch)
            for batch in self._iterate(epoch, skip):
                batch = [t.to(self.device, non_blocking=True) for t in batch]
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    loss, terms = self.loss_fn(batch)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                average_gradients(self.params)
                if cfg.clip:
                    torch.nn.utils.clip_grad_norm_(self.params, cfg.clip)
                self.opt.step()
                self.sched.step()
                self.step += 1
                seen += len(batch[0]) * self.world
                for k, v in {"loss": loss.detach(), **terms}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.update(1)
                if self.on_step:
                    self.on_step(self.step)
                if self.step % cfg.log_every == 0 or self.step == stop_at:
                    n = max(1, self.step % cfg.log_every or cfg.log_every)
                    rec = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3),
                           "lr": self.sched.get_last_lr()[0],
                           "images_per_s": round(seen / max(time.time() - t0, 1e-9), 1),
                           **{k: all_mean(v / n, self.device) for k, v in sums.items()}}
                    self.history.append(rec)
                    if self.rank == 0:
                        bar.write(f"[{self.name}] " + " ".join(
                            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
                    t0, seen, sums = time.time(), 0, {}
                if self.evaluate and (self.step % eval_every == 0 or self.step == self.total_steps):
                    metrics = self.evaluate()
                    self.history.append({"step": self.step, **metrics})
                    if self.rank == 0:
                        bar.write(f"[{self.name}] eval " + json.dumps(metrics))
                        if metrics.get("val_loss", math.inf) < self.best:
                            self.best = metrics["val_loss"]
                            self.save_model(self.out / "best.safetensors", {"step": self.step})
                if self.step % cfg.ckpt_every == 0 or self.step == stop_at:
                    self.save_checkpoint()
                if self.step >= stop_at:
                    break
        bar.close()
        barrier()
        return self.history

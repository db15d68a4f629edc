"""Prior training: noise-prediction loss, EMA weights (diffusers ``EMAModel``), sample grids as it goes,
resumable through `spnn.training.loop.TrainLoop`."""

from __future__ import annotations

from pathlib import Path

import torch

from spnn.diffusion.prior import Prior
from spnn.io import load_tensors, save_tensors
from spnn.training.distributed import is_main
from spnn.training.loop import LoopConfig, TrainLoop

__all__ = ["train_prior"]


def train_prior(prior: Prior, train_set, out_dir: str | Path, cfg: LoopConfig, *, ema_decay: float = 0.999,
                sample_every: int = 1000, sample_steps: int = 50, device="cpu", resume: bool = True,
                progress: bool = True) -> dict:
    """Train ``prior`` on images of ``train_set``; exports the EMA prior to ``out_dir/prior``."""
    from diffusers.training_utils import EMAModel

    out_dir = Path(out_dir)
    prior.to(device).train()
    ema = EMAModel(prior.unet.parameters(), decay=ema_decay, use_ema_warmup=True, power=0.75,
                   foreach=torch.device(device).type == "cuda")
    ema.to(device)

    def ema_prior() -> Prior:
        import copy

        shadow = copy.deepcopy(prior.unet)
        ema.copy_to(shadow.parameters())
        return Prior(shadow.eval(), prior.scheduler).to(device)

    def loss_fn(batch):
        return prior.training_loss(batch[0]), {}

    def on_step(step: int) -> None:
        ema.step(prior.unet.parameters())
        if sample_every and step % sample_every == 0 and is_main():
            write_samples(ema_prior(), out_dir / f"samples-{step:06d}.png", sample_steps)

    def save(path, meta):
        tensors = {f"model.{k}": v for k, v in prior.unet.state_dict().items()}
        tensors |= {f"ema.{i}": p for i, p in enumerate(ema.shadow_params)}
        save_tensors(path, tensors, {**meta, "ema_optimization_step": ema.optimization_step,
                                     "unet_config": dict(prior.unet.config)})

    def load(path):
        tensors, meta = load_tensors(path, device)
        prior.unet.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for i, p in enumerate(ema.shadow_params):
            p.data.copy_(tensors[f"ema.{i}"])
        ema.optimization_step = meta["ema_optimization_step"]

    loop = TrainLoop(cfg, list(prior.unet.parameters()), loss_fn, train_set, out_dir / "checkpoints", save, load,
                     None, device, on_step=on_step, name="prior")
    history = loop.run(resume=resume, progress=progress)
    result = {"steps": loop.step, "total_steps": loop.total_steps, "finished": loop.step >= loop.total_steps,
              "history_tail": history[-3:]}
    if is_main():
        final = ema_prior()
        final.save(out_dir / "prior")
        write_samples(final, out_dir / "samples-latest.png", sample_steps)
    return result


@torch.no_grad()
def write_samples(prior: Prior, path: Path, steps: int = 50, n: int = 16, seed: int = 0) -> None:
    from spnn.diffusion.sampler import sample
    from spnn.viz import image_grid

    x = sample(prior, n, steps=steps, seeds=list(range(seed, seed + n)), progress=False).images
    image_grid([x[i:i + 8] for i in range(0, n, 8)], path, scale=3)


def export_ema(checkpoint: str | Path, out_dir: str | Path) -> Prior:
    """Write the EMA weights of a training checkpoint (``last.safetensors``) as a prior folder."""
    from diffusers import UNet2DModel

    from spnn.diffusion.prior import linear_schedule
    from spnn.errors import CheckpointError

    tensors, meta = load_tensors(checkpoint)
    if "unet_config" not in meta:
        raise CheckpointError(f"{checkpoint}: not a prior training checkpoint (no unet_config)")
    unet = UNet2DModel.from_config(meta["unet_config"])
    params = list(unet.parameters())
    ema = [tensors[f"ema.{i}"] for i in range(len(params))]
    for p, v in zip(params, ema):
        p.data.copy_(v)
    buffers = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    unet.load_state_dict({**buffers, **{k: p.data for k, p in unet.named_parameters()}})
    prior = Prior(unet.eval(), linear_schedule())
    prior.save(out_dir)
    return prior

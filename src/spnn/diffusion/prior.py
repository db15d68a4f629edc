"""A pixel-space diffusion prior: a diffusers ``UNet2DModel`` predicting noise, with a DDPM schedule.

Saved as a diffusers-style folder (``unet/`` and ``scheduler/``), the layout of
``google/ddpm-ema-celebahq-256``; `Prior.load` also reads a bare UNet folder and checkpoints of the
original DDPM/DDIM repository (``celeba_hq.ckpt``) through `spnn.diffusion.convert_ddim`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from spnn.caching import FrozenCache
from spnn.errors import CheckpointError, ConfigError

__all__ = ["Prior", "build_unet", "UNET_PRESETS", "linear_schedule", "resolve_precision", "cpu_has_bfloat16",
           "predict_eps", "PRECISIONS"]

PRECISIONS = ("auto", "float32", "bfloat16")


def predict_eps(prior: Prior, x: torch.Tensor, t: torch.Tensor, precision: str = "float32") -> torch.Tensor:
    """``prior.eps(x, t)`` in x's dtype; with ``precision`` "bfloat16" computed in bfloat16: by a prior whose
    weights are bfloat16 (`Prior.at_precision`, the fast route), else under bfloat16 autocast."""
    if precision == "float32":
        return prior.eps(x, t)
    if precision != "bfloat16":
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if prior.bfloat16_weights:
        return prior.eps(x.to(torch.bfloat16), t).to(x.dtype)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        return prior.eps(x, t).to(x.dtype)


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), as oneDNN reports it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device | str, batch: int, preset: str = "spnn",
                      dtype: torch.dtype = torch.float32, pixels: int = 32 * 32, traced: bool = False) -> str:
    """The UNet's precision for a sampling run: "float32" or "bfloat16".

    "auto" is bfloat16 where it is measured to be faster with unchanged quality (docs: benchmarks, speed): on a
    CPU with native bfloat16 (`cpu_has_bfloat16`) from 4 x 32 x 32 pixels a call (``batch`` images of ``pixels``
    each: 4 images at 32x32, where a single image is slower in bfloat16; one image at 256x256, where the
    UNet runs 4.3x faster in bfloat16), or from one 32 x 32 image when the run calls the bfloat16 UNet as a frozen
    trace (``traced``, `Prior.eps`: 5.5 against 8.1 ms in float32 at batch 1), and on CUDA devices that support it;
    float32 elsewhere and always under
    the paper preset (its reproduction is checked in float32), and for priors whose weights are not float32.
    The SPNN always runs in float32: its identities must hold at float32 level. Exact batch independence (an
    image does not depend on the batch it is drawn in) holds in float32; bfloat16 results depend on the batch at
    bfloat16 rounding level.

    >>> resolve_precision("auto", "cpu", 1)
    'float32'
    >>> resolve_precision("bfloat16", "cpu", 1), resolve_precision("auto", "cpu", 64, preset="paper")
    ('bfloat16', 'float32')
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if preset == "paper" or dtype != torch.float32:
        return "float32"
    if kind == "cpu":
        return "bfloat16" if cpu_has_bfloat16() and batch * pixels >= (1 if traced else 4) * 32 * 32 else "float32"
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "float32"


class _Sample(nn.Module):
    """A UNet2DModel's noise prediction as a plain tensor (what the tracer records)."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, return_dict=False)[0]


def _frozen_trace(unet: nn.Module, x: torch.Tensor, t: torch.Tensor):
    """``unet`` traced at (x, t), frozen and optimised for inference; None if the tracer cannot record it."""
    import warnings

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape checks it records as constants
            traced = torch.jit.trace(_Sample(unet).eval(), (x, t), check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception:  # noqa: BLE001 - any failure of the tracer means: call the UNet as it is
        return None


UNET_PRESETS = {
    # ~1.1 M parameters: 32x32 avatars on a CPU
    "tiny": dict(block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=8,
                 down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
    # ~3.9 M parameters, ~1.6x the CPU time of tiny (tried on a GPU, not shipped: README, model variants)
    "base": dict(block_out_channels=(32, 64, 128), layers_per_block=2, norm_num_groups=16,
                 down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")),
    "small": dict(block_out_channels=(64, 128, 128), layers_per_block=2, norm_num_groups=16,
                  down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
}


def build_unet(size: int, channels: int = 3, preset: str = "tiny", **overrides):
    """A fresh ``UNet2DModel`` from a preset (``tiny`` ~1.1 M parameters, ``base`` ~3.9 M, ``small`` ~6.5 M)."""
    from diffusers import UNet2DModel

    if preset not in UNET_PRESETS:
        raise ConfigError(f"unknown UNet preset {preset!r}; choose one of {sorted(UNET_PRESETS)}")
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels,
                       **{**UNET_PRESETS[preset], **overrides})


def linear_schedule(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
    """DDPM linear beta schedule (Ho et al.), as a diffusers ``DDPMScheduler``."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=steps, beta_schedule="linear", beta_start=beta_start,
                         beta_end=beta_end, clip_sample=False)


class Prior(nn.Module):
    """eps_theta(x_t, t) and the cumulative schedule alpha_bar_t; images in [-1, 1].

    >>> prior = Prior(build_unet(8, preset="tiny", block_out_channels=(8, 8, 8), norm_num_groups=4))
    >>> prior.eps(torch.zeros(2, 3, 8, 8), torch.tensor([10, 500])).shape
    torch.Size([2, 3, 8, 8])
    """

    def __init__(self, unet: nn.Module, scheduler=None):
        super().__init__()
        self.unet = unet
        self.scheduler = scheduler or linear_schedule()
        self.register_buffer("alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False)
        self._channels_last = False
        self.bfloat16_weights = False  # a copy made by `at_precision`
        self._bfloat16 = FrozenCache(differentiable=False)
        self._graphs = FrozenCache(differentiable=False)
        self._traces: dict | None = None  # input signature -> frozen trace (`at_precision`'s CPU copy), None: off
        self.use_traces = True  # the sampler's graphs="off" switches the traces off for its run

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        cfg = self.unet.config
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        return (cfg.in_channels, size, size)

    def eps(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise eps_theta(x_t, t) (``t`` a tensor of per-sample integer timesteps)."""
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            traced = self._trace_for(x, t)
            return (traced(x, t) if traced is not None else self.unet(x, t).sample).contiguous()
        return self.unet(x, t).sample

    @property
    def traced(self) -> bool:
        """Whether calls without gradients run as frozen traces (the bfloat16 CPU copy, traces on)."""
        return self._traces is not None and self.use_traces

    def will_trace(self, precision: str) -> bool:
        """Whether sampling at ``precision`` calls the UNet as frozen traces: bfloat16 on this prior's traced copy
        (`at_precision`), or on itself if it is that copy."""
        if precision != "bfloat16":
            return False
        if self.bfloat16_weights:
            return self.traced
        return next(self.unet.parameters()).dtype == torch.float32 and self._traceable()

    def _traceable(self) -> bool:
        """A diffusers UNet2DModel on the CPU after `for_inference` (what the tracer is known to record)."""
        from diffusers import UNet2DModel

        return (self._channels_last and isinstance(self.unet, UNet2DModel)
                and next(self.unet.parameters()).device.type == "cpu")

    def _trace_for(self, x: torch.Tensor, t: torch.Tensor):
        """The UNet traced and frozen for inputs like (x, t) (TorchScript: its convolutions fused with what
        follows them; 0.65-0.83x the time of a bfloat16 call on the 2-core CPU, where float32 gains nothing), or
        None: traces off, or a call that needs gradients. Recorded once per input signature; a UNet the tracer
        cannot record is called as it is."""
        if not self.traced or x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
            return None  # (a prior moved to a GPU after `for_inference` keeps its flag: CUDA graphs serve there)
        key = (x.shape, x.dtype, x.device, t.shape, t.dtype)
        if key not in self._traces:
            self._traces[key] = _frozen_trace(self.unet, x, t)
        return self._traces[key]

    def for_inference(self) -> Prior:
        """Eval mode, and on the CPU the UNet's weights in channels-last memory order (faster convolutions,
        the same arithmetic up to float rounding); returns self."""
        self.eval()
        first = next(self.unet.parameters(), None)
        if first is not None and first.device.type == "cpu" and not self._channels_last:
            self.unet.to(memory_format=torch.channels_last)
            self._channels_last = True
        return self

    def at_precision(self, precision: str) -> Prior:
        """The prior to sample with at a resolved precision ("float32" or "bfloat16"): itself, or a copy with its
        UNet's weights in bfloat16 (no gradients; kept until this prior's weights change, at half the memory of the
        float32 weights), which `predict_eps`
        calls in bfloat16 throughout: no per-call weight casts as under autocast (about 13% less time per UNet call
        at batch 16 on the 2-core CPU, the same rounding level)."""
        if precision != "bfloat16" or self.bfloat16_weights:
            return self
        if next(self.unet.parameters()).dtype != torch.float32:
            return self  # other weight dtypes keep autocast (`resolve_precision` gives them float32 under "auto")
        return self._bfloat16.get(list(self.unet.parameters()), self._bfloat16_copy)

    def graphed_eps(self, precision: str = "float32") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``predict_eps(self, x, t, precision)`` replayed from CUDA graphs (`spnn.graphs`, one per batch size, each
        keeping the memory of its activations; a plain call on the CPU), kept until the weights change. Only for
        a diffusers ``UNet2DModel``: another network may read values back to the host, which a graph cannot
        record, so it is called plainly."""
        from diffusers import UNet2DModel

        from spnn.graphs import GraphedCall

        if not isinstance(self.unet, UNet2DModel):
            return lambda x, t: predict_eps(self, x, t, precision)
        return self._graphs.get(list(self.unet.parameters()),
                                lambda: GraphedCall(lambda x, t: predict_eps(self, x, t, precision)), precision)

    def _bfloat16_copy(self) -> Prior:
        unet = copy.deepcopy(self.unet).requires_grad_(False).eval()
        nn.Module.to(unet, dtype=torch.bfloat16)  # nn.Module's own: diffusers' `to` warns about dtype casts
        twin = Prior(unet, self.scheduler)
        twin._channels_last, twin.bfloat16_weights = self._channels_last, True
        if self._traceable():
            twin._traces = {}
        return twin

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-prediction MSE at uniformly drawn timesteps."""
        t = torch.randint(0, self.num_train_timesteps, (len(x0),), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        a = self.alphas_cumprod.to(x0)[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        return torch.nn.functional.mse_loss(self.eps(x_t, t), noise)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path/unet`` and ``path/scheduler`` (diffusers format, safetensors)."""
        import shutil
        import tempfile

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        self.unet.save_pretrained(tmp / "unet", safe_serialization=True)
        self.scheduler.save_pretrained(tmp / "scheduler")
        umask = os.umask(0)
        os.umask(umask)
        for p in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: give the usual permissions
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)
        old = path.with_name(path.name + ".old")
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        if old.exists():
            shutil.rmtree(old)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", image_size: int | None = None) -> Prior:
        """From a diffusers pipeline folder (``unet/``, ``scheduler/``), a bare UNet folder
        (``config.json``), or an original DDPM/DDIM-repository checkpoint file (.ckpt/.pth/.pt/.safetensors;
        ``image_size`` gives its image size, default 256)."""
        from diffusers import DDPMScheduler

        path = Path(path)
        if path.is_file():
            from spnn.diffusion.convert_ddim import load_ddim_checkpoint

            return cls(load_ddim_checkpoint(path, image_size=image_size)).to(device)
        if not path.exists():
            raise CheckpointError(f"{path}: no such prior (a diffusers folder or a .ckpt file)")
        unet_dir = path / "unet" if (path / "unet" / "config.json").exists() else path
        if not (unet_dir / "config.json").exists():
            raise CheckpointError(f"{path}: no unet/config.json or config.json: not a diffusers UNet folder")
        unet = _load_unet(unet_dir)
        sched_dir = path / "scheduler"
        scheduler = DDPMScheduler.from_pretrained(sched_dir) if (sched_dir / "scheduler_config.json").exists() \
            else linear_schedule()
        return cls(unet.eval(), scheduler).to(device)


def _load_unet(unet_dir: Path):
    """A diffusers ``UNet2DModel`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``), checked
    against the file's header on the ``meta`` device before any weight is allocated."""
    import json

    from diffusers import UNet2DModel

    from spnn.io import check_header, read_tensors
    from spnn.network import load_state_checked

    weights = unet_dir / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{unet_dir}: no diffusion_pytorch_model.safetensors (only safetensors weights are "
                              "read: .bin files are pickles that can run code); convert it with diffusers first")
    try:
        config = json.loads((unet_dir / "config.json").read_text())
        with torch.device("meta"):
            skeleton = UNet2DModel.from_config(config)
    except Exception as e:  # noqa: BLE001 - any malformed configuration
        raise CheckpointError(f"{unet_dir / 'config.json'}: not a valid UNet2DModel configuration "
                              f"({type(e).__name__}: {e})") from None
    check_header(weights, skeleton.state_dict())
    tensors = read_tensors(weights)
    unet = UNet2DModel.from_config(config)
    load_state_checked(unet, tensors, str(weights))
    return unet

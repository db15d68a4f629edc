"""Convert checkpoints of the original DDPM/DDIM repository ``Model`` (e.g. SDEdit's ``celeba_hq.ckpt``:
ch 128, ch_mult (1, 1, 2, 2, 4, 4), 2 res blocks, attention at 16x16) to a diffusers ``UNet2DModel``.

The architecture is read off the state dict (channels, levels, res blocks, attention levels); keys map
one to one (1x1-conv q/k/v/proj_out become linear layers).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from spnn.errors import CheckpointError

__all__ = ["infer_ddim_config", "convert_ddim_state_dict", "load_ddim_checkpoint", "ddim_to_diffusers_config"]

RESNET = {"norm1": "norm1", "conv1": "conv1", "temb_proj": "time_emb_proj", "norm2": "norm2", "conv2": "conv2",
          "nin_shortcut": "conv_shortcut"}
ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _strip(state: dict) -> dict:
    """Accept {'state_dict': ...} / {'model': ...} wrappers and DataParallel 'module.' prefixes."""
    for key in ("state_dict", "model", "ema"):
        if key in state and isinstance(state[key], dict) and "conv_in.weight" not in state:
            state = state[key]
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def infer_ddim_config(state: dict) -> dict:
    """ch, out_ch, ch_mult, num_res_blocks and the levels with attention, from tensor shapes."""
    if "conv_in.weight" not in state or "temb.dense.0.weight" not in state:
        raise CheckpointError("not a DDPM/DDIM-repository Model state dict (no conv_in / temb.dense keys)")
    ch = state["conv_in.weight"].shape[0]
    levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"down\.(\d+)\.", k))})
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"down\.0\.block\.(\d+)\.", k))})
    ch_mult = [state[f"down.{i}.block.0.conv1.weight"].shape[0] // ch for i in levels]
    attn_levels = [i for i in levels if f"down.{i}.attn.0.q.weight" in state]
    return {"ch": ch, "in_channels": state["conv_in.weight"].shape[1], "out_ch": state["conv_out.weight"].shape[0],
            "ch_mult": ch_mult, "num_res_blocks": len(blocks), "attn_levels": attn_levels,
            "resamp_with_conv": f"down.{levels[0]}.downsample.conv.weight" in state}


def ddim_to_diffusers_config(cfg: dict, image_size: int) -> dict:
    n = len(cfg["ch_mult"])
    down = ["AttnDownBlock2D" if i in cfg["attn_levels"] else "DownBlock2D" for i in range(n)]
    up = ["AttnUpBlock2D" if i in cfg["attn_levels"] else "UpBlock2D" for i in reversed(range(n))]
    if not cfg["resamp_with_conv"]:
        raise CheckpointError("checkpoints with resamp_with_conv=False are not supported")
    return dict(sample_size=image_size, in_channels=cfg["in_channels"], out_channels=cfg["out_ch"],
                block_out_channels=tuple(cfg["ch"] * m for m in cfg["ch_mult"]),
                layers_per_block=cfg["num_res_blocks"], down_block_types=tuple(down), up_block_types=tuple(up),
                act_fn="silu", norm_num_groups=32, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False,
                freq_shift=1, attention_head_dim=None, add_attention=True, center_input_sample=False,
                time_embedding_type="positional")


def _key(k: str, n_levels: int) -> str:
    if m := re.fullmatch(r"temb\.dense\.(\d)\.(weight|bias)", k):
        return f"time_embedding.linear_{int(m.group(1)) + 1}.{m.group(2)}"
    if k.startswith(("conv_in.", "conv_out.")):
        return k
    if k.startswith("norm_out."):
        return "conv_norm_out." + k[len("norm_out."):]
    if m := re.fullmatch(r"(down|up)\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)", k):
        side, lvl, j, part, wb = m.groups()
        i = int(lvl) if side == "down" else n_levels - 1 - int(lvl)
        return f"{side}_blocks.{i}.resnets.{j}.{RESNET[part]}.{wb}"
    if m := re.fullmatch(r"(down|up)\.(\d+)\.attn\.(\d+)\.(\w+)\.(weight|bias)", k):
        side, lvl, j, part, wb = m.groups()
        i = int(lvl) if side == "down" else n_levels - 1 - int(lvl)
        return f"{side}_blocks.{i}.attentions.{j}.{ATTN[part]}.{wb}"
    if m := re.fullmatch(r"down\.(\d+)\.downsample\.conv\.(weight|bias)", k):
        return f"down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}"
    if m := re.fullmatch(r"up\.(\d+)\.upsample\.conv\.(weight|bias)", k):
        return f"up_blocks.{n_levels - 1 - int(m.group(1))}.upsamplers.0.conv.{m.group(2)}"
    if m := re.fullmatch(r"mid\.(block_1|attn_1|block_2)\.(\w+)\.(weight|bias)", k):
        where, part, wb = m.groups()
        if where == "attn_1":
            return f"mid_block.attentions.0.{ATTN[part]}.{wb}"
        return f"mid_block.resnets.{0 if where == 'block_1' else 1}.{RESNET[part]}.{wb}"
    raise CheckpointError(f"unexpected key {k!r} in a DDPM/DDIM-repository checkpoint")


def convert_ddim_state_dict(state: dict) -> tuple[dict, dict]:
    """(diffusers state dict, inferred DDIM config)."""
    state = _strip(state)
    cfg = infer_ddim_config(state)
    out = {}
    for k, v in state.items():
        new = _key(k, len(cfg["ch_mult"]))
        if re.search(r"attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$", new):
            v = v.reshape(v.shape[0], v.shape[1])  # 1x1 conv -> linear
        out[new] = v
    return out, cfg


def load_ddim_checkpoint(path: str | os.PathLike, image_size: int | None = None):
    """A ``UNet2DModel`` with the weights of an original-repository checkpoint (.ckpt/.pth/.pt/.safetensors)."""
    from diffusers import UNet2DModel

    from spnn.io import read_tensors, safe_torch_load

    path = Path(path)
    state = read_tensors(path) if path.suffix == ".safetensors" and path.is_file() else safe_torch_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        converted, cfg = convert_ddim_state_dict(state)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}; give a prior folder (diffusers layout) or the DDIM-repository "
                              "checkpoint") from None
    unet = UNet2DModel(**ddim_to_diffusers_config(cfg, image_size or 256))
    missing, unexpected = unet.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: conversion left missing keys {missing[:5]} / unexpected {unexpected[:5]}")
    return unet.eval()

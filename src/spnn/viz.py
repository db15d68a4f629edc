"""PNG grids: image tiles (upscaled with nearest neighbour) with optional captions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from spnn.errors import ConfigError
from spnn.io import atomic_write

__all__ = ["to_uint8", "image_grid", "labelled_grid", "save_png"]


def to_uint8(images) -> np.ndarray:
    """Tensor (N, 3, H, W) in [-1, 1] or uint8 array (N, H, W, 3) -> uint8 (N, H, W, 3)."""
    if isinstance(images, torch.Tensor):
        x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().byte()
        return x.permute(0, 2, 3, 1).numpy()
    return np.asarray(images, dtype=np.uint8)


def save_png(image, path: str | os.PathLike) -> None:
    """Write a PIL image, or one (3, H, W) tensor in [-1, 1], atomically."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3:
            raise ConfigError(f"save_png takes one image (3, H, W); got shape {tuple(image.shape)} (use image_grid)")
        from PIL import Image

        image = Image.fromarray(to_uint8(image[None])[0])
    buf = BytesIO()
    image.save(buf, format="PNG")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def image_grid(rows: Sequence, path: str | os.PathLike, scale: int = 4,
               row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
               captions: Sequence[Sequence[str]] | None = None, pad: int = 2) -> None:
    """Grid of rows of images (each row a tensor batch or uint8 array); labels on the left and top,
    an optional caption (a few short lines) under each tile."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    rows = [to_uint8(r) for r in rows]
    h, w = rows[0].shape[1] * scale, rows[0].shape[2] * scale
    ncol = max(len(r) for r in rows)
    cap_lines = max((len(c) for row in (captions or []) for c in row), default=0)
    cap_h = 11 * cap_lines
    left = 8 + 6 * max((len(s) for s in row_labels), default=0) if row_labels else 0
    top = 14 if col_labels else 0
    canvas = Image.new("RGB", (left + ncol * (w + pad) + pad, top + len(rows) * (h + cap_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate(col_labels or []):
        draw.text((left + pad + j * (w + pad), 2), label, fill="black", font=font)
    for i, row in enumerate(rows):
        y0 = top + pad + i * (h + cap_h + pad)
        if row_labels:
            draw.text((4, y0 + h // 2 - 5), row_labels[i], fill="black", font=font)
        for j, img in enumerate(row):
            x0 = left + pad + j * (w + pad)
            canvas.paste(Image.fromarray(img).resize((w, h), Image.NEAREST), (x0, y0))
            if captions:
                for k, line in enumerate(captions[i][j] if j < len(captions[i]) else []):
                    draw.text((x0, y0 + h + 1 + 11 * k), line, fill="black", font=font)
    save_png(canvas, path)


def short_name(name: str, width: int = 10) -> str:
    parts = name.replace("Wearing_", "").replace("_", " ").split()
    return " ".join(parts)[:width]


def labelled_grid(images, labels: np.ndarray, path: str | os.PathLike, names: Sequence[str] | None = None,
                  per_row: int = 8, scale: int = 4) -> None:
    """Samples with their active attributes written under each tile."""
    from spnn.data.avatars import AVATAR_ATTRIBUTES

    names = names or AVATAR_ATTRIBUTES
    images = to_uint8(images)
    caps = [[short_name(n, 2 * scale + 12) for n, v in zip(names, lab) if v] for lab in labels]
    rows = [images[i:i + per_row] for i in range(0, len(images), per_row)]
    captions = [caps[i:i + per_row] for i in range(0, len(images), per_row)]
    image_grid(rows, path, scale=scale, captions=captions)

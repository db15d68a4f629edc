"""Loaders for real attribute datasets, read lazily from disk.

- `CelebA`: ``img_align_celeba/``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``;
- `CelebAMaskHQ`: ``CelebA-HQ-img/{i}.jpg``, ``CelebAMask-HQ-attribute-anno.txt``; split by index
  24,000 / 3,000 / 3,000 as the paper's authors do;
- `ImageFolderCSV`: any folder with ``attributes.csv`` (``filename`` column, one column per attribute
  with 0/1 or -1/1 values, optional ``split`` column of train/val/test; else split by row index).

Images are centre-cropped to a square, resized to ``size``, scaled to [-1, 1]; labels are {0, 1}.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from spnn.data.common import SPLITS, attribute_index, split_of, to_tensor_images
from spnn.errors import DataError

__all__ = ["LabelledImages", "CelebA", "CelebAMaskHQ", "ImageFolderCSV", "load_image", "IMAGE_SUFFIXES"]


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _rgb(im) -> np.ndarray:
    """uint8 (H, W, 3) of any Pillow image: 16-bit and 32-bit grey are rescaled (not clipped), alpha dropped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.rint(a / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(np.rint(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image(path: str | os.PathLike, size: int, min_side: int = 1) -> np.ndarray:
    """uint8 (size, size, 3): centre square crop, bicubic resize.

    Refuses (`DataError`, naming the file) unreadable files, images over Pillow's decompression-bomb limit,
    and images whose short side is below ``min_side`` pixels."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if min(w, h) < min_side:
                    raise DataError(f"{path}: image is {w}x{h} pixels, too small to resize to {size}x{size} "
                                    f"(short side at least {min_side}); give a larger image")
                rgb = Image.fromarray(_rgb(im))
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image has more pixels than Pillow's safety limit ({Image.MAX_IMAGE_PIXELS}), "
                        "possibly a decompression bomb; resize it first") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read image ({e}); give a PNG, JPEG, WebP or BMP file") from None
    s = min(w, h)
    rgb = rgb.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(rgb.resize((size, size), Image.BICUBIC), dtype=np.uint8)


class LabelledImages(Dataset):
    """Image files with binary labels; items are (float (3, size, size) in [-1, 1], float labels)."""

    in_memory = False

    def __init__(self, files: Sequence[Path], labels: np.ndarray, names: Sequence[str], size: int,
                 attributes: Sequence[str] | None = None):
        if attributes is not None:
            cols = [attribute_index(names, a) for a in attributes]
            labels, names = labels[:, cols], list(attributes)
        self.files = list(files)
        self.labels = np.asarray(labels, dtype=np.float32)
        self.attribute_names = list(names)
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        image = to_tensor_images(load_image(self.files[i], self.size)[None])[0]
        return image, torch.from_numpy(self.labels[i])

    def tensors(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self) if limit is None else min(limit, len(self))
        images = np.stack([load_image(f, self.size) for f in self.files[:n]])
        return to_tensor_images(images), torch.from_numpy(self.labels[:n])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def subset(self, indices: np.ndarray) -> LabelledImages:
        """The files and labels at ``indices`` (repeats allowed), as a new dataset."""
        return LabelledImages([self.files[i] for i in indices], self.labels[indices], self.attribute_names, self.size)


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {list(SPLITS)}")


def _read_attribute_table(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """CelebA-style table: a count line, a line of names, then 'file v1 v2 ...' with values -1/1."""
    if not path.is_file():
        raise DataError(f"{path}: attribute table not found")
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a header line of attribute names")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}:1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}:{lineno}: expected a file name and {len(names)} values, got {len(parts)} fields")
        try:
            values = [int(v) for v in parts[1:]]
        except ValueError:
            raise DataError(f"{path}:{lineno}: attribute values must be -1 or 1") from None
        if any(v not in (-1, 0, 1) for v in values):
            raise DataError(f"{path}:{lineno}: attribute values must be -1 or 1")
        files.append(parts[0])
        rows.append(values)
    if len(files) != count:
        raise DataError(f"{path}: header says {count} images but the table has {len(files)} rows")
    return names, files, (np.array(rows, dtype=np.int64).reshape(-1, len(names)) > 0).astype(np.float32)


class CelebA(LabelledImages):
    """CelebA (aligned 178x218 crops) with its official partition."""

    def __init__(self, root: str | os.PathLike, split: str | None = "train", size: int = 64,
                 attributes: Sequence[str] | None = None):
        _check_split(split)
        root = Path(root)
        names, files, labels = _read_attribute_table(root / "list_attr_celeba.txt")
        part_path = root / "list_eval_partition.txt"
        if not part_path.is_file():
            raise DataError(f"{part_path}: partition file not found")
        partition = {}
        for lineno, line in enumerate(part_path.read_text().splitlines(), start=1):
            if line.strip():
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise DataError(f"{part_path}:{lineno}: expected 'file 0|1|2', got {line!r}")
                partition[parts[0]] = int(parts[1])
        keep = np.ones(len(files), dtype=bool)
        if split is not None:
            missing = [f for f in files if f not in partition]
            if missing:
                raise DataError(f"{part_path}: no partition for {missing[0]} (+{len(missing) - 1} more)")
            keep = np.array([partition[f] == SPLITS.index(split) for f in files])
        paths = [_inside(root / "img_align_celeba", f, str(root / "list_attr_celeba.txt")) for f, k in zip(files, keep)
                 if k]
        super().__init__(paths, labels[keep], names, size, attributes)


class CelebAMaskHQ(LabelledImages):
    """CelebAMask-HQ (30,000 images) split by index: 0-23,999 train, 24,000-26,999 val, rest test."""

    def __init__(self, root: str | os.PathLike, split: str | None = "train", size: int = 256,
                 attributes: Sequence[str] | None = None):
        _check_split(split)
        root = Path(root)
        names, files, labels = _read_attribute_table(root / "CelebAMask-HQ-attribute-anno.txt")
        index = np.array([int(Path(f).stem) if Path(f).stem.isdigit() else -1 for f in files])
        if (index < 0).any():
            bad = files[int(np.argmax(index < 0))]
            raise DataError(f"{root}: CelebAMask-HQ file names are numbers (0.jpg ...), got {bad!r}")
        keep = np.ones(len(files), dtype=bool)
        if split is not None:
            bounds = {"train": (0, 24000), "val": (24000, 27000), "test": (27000, 30000)}[split]
            keep = (index >= bounds[0]) & (index < bounds[1])
        table = str(root / "CelebAMask-HQ-attribute-anno.txt")
        paths = [_inside(root / "CelebA-HQ-img", f, table) for f, k in zip(files, keep) if k]
        super().__init__(paths, labels[keep], names, size, attributes)


def _inside(root: Path, name: str, where: str) -> Path:
    """root / name, refused unless it stays inside root (no absolute paths, no '..' out of the folder)."""
    if not name:
        raise DataError(f"{where}: empty file name")
    path = Path(name)
    base = root.resolve()
    full = (root / path).resolve()
    if path.is_absolute() or not full.is_relative_to(base):
        raise DataError(f"{where}: file name {name!r} points outside the dataset folder {root}; "
                        "use paths relative to the folder, without '..'")
    return root / path


class ImageFolderCSV(LabelledImages):
    """A folder of images plus ``attributes.csv`` (or ``csv_path``)."""

    def __init__(self, root: str | os.PathLike, split: str | None = "train", size: int = 64,
                 attributes: Sequence[str] | None = None, csv_path: str | os.PathLike | None = None):
        _check_split(split)
        root = Path(root)
        csv_path = Path(csv_path) if csv_path else root / "attributes.csv"
        if not csv_path.is_file():
            raise DataError(f"{csv_path}: attribute table not found (expected a CSV with a 'filename' column)")
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise DataError(f"{csv_path}: the file is empty; write a header line with a 'filename' column "
                                "and one column per attribute")
            header = [h.strip() for h in header]
            if "filename" not in header:
                raise DataError(f"{csv_path}:1: header must contain a 'filename' column, got {header[:5]}")
            fcol = header.index("filename")
            scol = header.index("split") if "split" in header else None
            names = [h for i, h in enumerate(header) if i not in (fcol, scol)]
            files, rows, splits = [], [], []
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{csv_path}:{lineno}: expected {len(header)} fields, got {len(row)}")
                values = [v for i, v in enumerate(row) if i not in (fcol, scol)]
                try:
                    nums = [float(v) for v in values]
                except ValueError:
                    raise DataError(f"{csv_path}:{lineno}: attribute values must be 0/1 or -1/1") from None
                if any(v not in (-1.0, 0.0, 1.0) for v in nums):
                    raise DataError(f"{csv_path}:{lineno}: attribute values must be 0/1 or -1/1")
                if scol is not None and row[scol] not in SPLITS:
                    raise DataError(f"{csv_path}:{lineno}: split must be train/val/test, got {row[scol]!r}")
                files.append(_inside(root, row[fcol], f"{csv_path}:{lineno}"))
                rows.append([1.0 if v > 0 else 0.0 for v in nums])
                splits.append(SPLITS.index(row[scol]) if scol is not None else None)
        if not files:
            raise DataError(f"{csv_path}: the table has a header but no rows; add one row per image")
        labels = np.array(rows, dtype=np.float32).reshape(-1, len(names))
        if split is not None:
            which = np.array([s if s is not None else split_of(i) for i, s in enumerate(splits)])
            keep = which == SPLITS.index(split)
        else:
            keep = np.ones(len(files), dtype=bool)
        paths = [f for f, k in zip(files, keep) if k]
        super().__init__(paths, labels[keep], names, size, attributes)

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

__all__ = ["LabelledImages", "CelebA", "CelebAMaskHQ", "ImageFolderCSV", "load_image"]


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """uint8 (size, size, 3): centre square crop, bicubic resize."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            return np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: cannot read image ({e})") from e


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
        paths = [root / "img_align_celeba" / f for f, k in zip(files, keep) if k]
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
        paths = [root / "CelebA-HQ-img" / f for f, k in zip(files, keep) if k]
        super().__init__(paths, labels[keep], names, size, attributes)


class ImageFolderCSV(LabelledImages):
    """A folder of images plus ``attributes.csv`` (or ``csv_path``)."""

    def __init__(self, root: str | os.PathLike, split: str | None = "train", size: int = 64,
                 attributes: Sequence[str] | None = None, csv_path: str | os.PathLike | None = None):
        _check_split(split)
        root = Path(root)
        csv_path = Path(csv_path) if csv_path else root / "attributes.csv"
        if not csv_path.is_file():
            raise DataError(f"{csv_path}: attribute table not found (expected a CSV with a 'filename' column)")
        with open(csv_path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or "filename" not in header:
                raise DataError(f"{csv_path}:1: header must contain a 'filename' column")
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
                files.append(row[fcol])
                rows.append([1.0 if v > 0 else 0.0 for v in nums])
                splits.append(SPLITS.index(row[scol]) if scol is not None else None)
        labels = np.array(rows, dtype=np.float32).reshape(-1, len(names))
        if split is not None:
            which = np.array([s if s is not None else split_of(i) for i, s in enumerate(splits)])
            keep = which == SPLITS.index(split)
        else:
            keep = np.ones(len(files), dtype=bool)
        paths = [root / f for f, k in zip(files, keep) if k]
        super().__init__(paths, labels[keep], names, size, attributes)

"""Shared dataset pieces: in-memory image/label arrays, splits, conversions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spnn.errors import DataError

__all__ = ["ArrayDataset", "split_of", "SPLITS", "to_tensor_images", "attribute_index"]

SPLITS = ("train", "val", "test")


def split_of(index: np.ndarray | int) -> np.ndarray:
    """Split of image ``index`` (0 train, 1 val, 2 test): i % 10 == 8 is val, == 9 is test.

    Membership depends on the index alone, so growing a dataset never moves an image across splits.
    """
    r = np.asarray(index) % 10
    return np.where(r == 9, 2, np.where(r == 8, 1, 0))


def to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    images = np.ascontiguousarray(images)
    if not images.flags.writeable:  # e.g. a memory-mapped cache: torch would warn; the float copy follows anyway
        images = images.copy()
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def attribute_index(names: Sequence[str], name: str) -> int:
    """Position of attribute ``name``; a clear error (listing the known names) if unknown."""
    try:
        return list(names).index(name)
    except ValueError:
        raise DataError(f"unknown attribute {name!r}; known attributes: {', '.join(names)}") from None


class ArrayDataset(Dataset):
    """Images (uint8 N x H x W x 3) and binary labels (N x A) held in memory.

    Items are ``(image, labels)``: float (3, H, W) in [-1, 1] and float (A,) in {0, 1}.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, attribute_names: Sequence[str]):
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} label rows")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.float32)
        self.attribute_names = list(attribute_names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return to_tensor_images(self.images[i:i + 1])[0], torch.from_numpy(self.labels[i])

    in_memory = True

    def tensors(self, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``limit`` (default all) images and labels as two tensors."""
        return to_tensor_images(self.images[:limit]), torch.from_numpy(self.labels[:limit])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w = self.images.shape[1:3]
        return (3, int(h), int(w))

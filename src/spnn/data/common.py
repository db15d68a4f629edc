"""Shared dataset pieces: in-memory image/label arrays, splits, conversions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spnn.errors import DataError

__all__ = ["ArrayDataset", "split_of", "SPLITS", "to_tensor_images", "attribute_index", "oversample",
           "parse_oversample"]

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

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """The images and labels at ``indices`` (repeats allowed), as a new dataset."""
        return ArrayDataset(self.images[indices], self.labels[indices], self.attribute_names)


def parse_oversample(items: Sequence[str]) -> dict[str, int]:
    """``["NAME=K", ...]`` as {NAME: K}, K a whole number >= 1; NAME may join attributes with ``+`` (the images
    that have all of them); a one-line error for anything else.

    >>> parse_oversample(["Gray_Hair=3", "Bangs+Blond_Hair=4"])
    {'Gray_Hair': 3, 'Bangs+Blond_Hair': 4}
    """
    out: dict[str, int] = {}
    for item in items:
        name, eq, k = str(item).partition("=")
        if not (eq and name and k.strip().isdigit() and int(k) >= 1) or "" in name.split("+"):
            raise DataError(f"oversample {item!r}: write NAME=K or NAME+NAME=K with K a whole number >= 1 "
                            "(e.g. Gray_Hair=3, Bangs+Blond_Hair=4)")
        out[name.strip()] = int(k)
    return out


def oversample(dataset, factors: dict[str, int]):
    """The dataset with every image that has attribute NAME repeated ``factors[NAME]`` times in all (the largest
    factor among those that match it; a NAME of the form A+B matches the images with both): a training set in
    which rare attributes, or rare combinations, weigh more. Order: the originals, then the repeats. Any labelled
    dataset with ``subset`` (the built-in avatars, CelebA, image folders with a table).

    >>> ds = ArrayDataset(np.zeros((4, 2, 2, 3), np.uint8), [[1, 0], [0, 0], [1, 1], [0, 1]], ["A", "B"])
    >>> oversample(ds, {"A": 3}).labels[:, 0].tolist()
    [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    >>> len(oversample(ds, {"A+B": 2}))  # only the third image has both
    5
    """
    if not (hasattr(dataset, "subset") and getattr(dataset, "attribute_names", None)):
        raise DataError(f"oversampling chooses images by their labels; {type(dataset).__name__} has none: use a "
                        "labelled dataset (avatars, celeba:DIR, celebahq:DIR, folder:DIR) or drop --oversample")
    repeats = np.ones(len(dataset), dtype=np.int64)
    for name, k in factors.items():
        if int(k) < 1:
            raise DataError(f"oversample {name}={k}: the factor must be a whole number >= 1")
        columns = [attribute_index(dataset.attribute_names, part.strip()) for part in name.split("+")]
        has = (dataset.labels[:, columns] > 0.5).all(axis=1)
        repeats[has] = np.maximum(repeats[has], int(k))
    idx = np.concatenate([np.arange(len(dataset)), np.repeat(np.arange(len(dataset)), repeats - 1)])
    return dataset.subset(idx)

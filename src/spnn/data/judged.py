"""Judged images: pictures the sampler drew (edits of training faces), labelled by evaluators where they agree.

An SPNN trained on rendered faces alone can read an attribute in a picture the sampler draws that no evaluator
reads (a washed-out fringe, a smile under a moustache): NLBP then stops at the SPNN's bound with the attribute
not drawn. A file of such pictures, each attribute labelled where every judge reads the same side and masked
elsewhere, feeds the phase-1 ``judged`` term (`spnn.training.spnn`): the task loss on those labels, so that the
SPNN's level set of an attribute leaves out what the judges do not read as it.

The file is safetensors (no code runs on loading): ``images`` uint8 (N, H, W, 3) as the datasets hold them
(`spnn.viz.to_uint8`, `spnn.data.common.to_tensor_images`), ``labels`` and ``mask`` float (N, A) in {0, 1}, the
attribute names in its metadata.

>>> import tempfile, torch
>>> path = tempfile.mkdtemp() + "/judged.safetensors"
>>> images = torch.zeros(3, 3, 4, 4)
>>> first = torch.tensor([[2.0, -1.0], [-3.0, 1.0], [1.0, 1.0]])
>>> readings = [first, torch.tensor([[1.0, 1.0], [-1.0, 2.0], [-2.0, 3.0]])]
>>> labels, mask = agreed_labels(readings)
>>> labels.tolist(), mask.tolist()
([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
>>> save_judged(path, images, labels, mask, ["a", "b"])
>>> judged = JudgedImages(path, ["a", "b"])
>>> x, y, m = judged(5)
>>> x.shape, y.shape, m.shape, len(judged)
(torch.Size([5, 3, 4, 4]), torch.Size([5, 2]), torch.Size([5, 2]), 3)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from spnn.data.common import to_tensor_images
from spnn.errors import DataError

__all__ = ["agreed_labels", "save_judged", "JudgedImages"]


def agreed_labels(readings: Sequence[torch.Tensor], attributes: Sequence[int] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (1 where every judge's logit > 0, else 0) and a mask (1 where all judges read the same side) from
    judges' logits (N, A) each; ``attributes`` (column indices) keeps the mask to those columns."""
    if not readings or any(r.shape != readings[0].shape or r.dim() != 2 for r in readings):
        raise DataError("agreed_labels needs one or more judges' logits of the same shape (N, A)")
    on = torch.stack([r > 0 for r in readings])
    labels, mask = on.all(0), on.all(0) | (~on).all(0)
    if attributes is not None:
        keep = torch.zeros(readings[0].shape[1], dtype=torch.bool)
        keep[list(attributes)] = True
        mask = mask & keep
    return labels.float(), mask.float()


def save_judged(path: str | os.PathLike, images: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                attribute_names: Sequence[str], source: str = "") -> None:
    """Write judged images (a tensor (N, 3, H, W) in [-1, 1] or a uint8 array (N, H, W, 3), as `spnn.viz.to_uint8`
    takes them) with their labels and mask; atomically."""
    from spnn.io import save_tensors
    from spnn.viz import to_uint8

    n, a = len(images), len(attribute_names)
    if images.ndim != 4 or labels.shape != (n, a) or mask.shape != (n, a):
        raise DataError(f"judged images: expected images (N, 3, H, W) and labels / mask ({n}, {a}), got "
                        f"{tuple(images.shape)}, {tuple(labels.shape)}, {tuple(mask.shape)}")
    save_tensors(path, {"images": torch.from_numpy(to_uint8(images)), "labels": labels.float(), "mask": mask.float()},
                 {"attribute_names": list(attribute_names), "source": source})


class JudgedImages:
    """Judged images from a file written by `save_judged`; ``judged(k)`` draws k (images in [-1, 1], labels,
    mask) with torch's global random state (which training checkpoints, so a resumed run draws the same)."""

    def __init__(self, path: str | os.PathLike, attribute_names: Sequence[str] | None = None):
        from spnn.io import load_tensors

        tensors, meta = load_tensors(path)  # safetensors: a clear CheckpointError if missing or not one
        missing = {"images", "labels", "mask"} - set(tensors)
        if missing:
            raise DataError(f"judged images: {path} lacks {', '.join(sorted(missing))}; write it with save_judged")
        self.images, self.labels, self.mask = tensors["images"], tensors["labels"], tensors["mask"]
        self.attribute_names = list(meta.get("attribute_names") or [])
        if attribute_names is not None and list(attribute_names) != self.attribute_names:
            raise DataError(f"judged images: {path} is labelled for attributes {self.attribute_names}, the network "
                            f"has {list(attribute_names)}")
        n = len(self.images)
        if (self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[-1] != 3 or n == 0
                or self.labels.shape != (n, len(self.attribute_names)) or self.mask.shape != self.labels.shape):
            raise DataError(f"judged images: {path} has inconsistent shapes (images {tuple(self.images.shape)}, "
                            f"labels {tuple(self.labels.shape)}, mask {tuple(self.mask.shape)})")

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        picks = torch.randint(len(self.images), (k,))
        return to_tensor_images(self.images[picks].numpy()), self.labels[picks], self.mask[picks]

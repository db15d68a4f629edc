"""Open a dataset from a short spec string: ``avatars``, ``avatars:64``, ``celeba:DIR``,
``celebahq:DIR`` or ``folder:DIR`` (with ``DIR/attributes.csv``)."""

from __future__ import annotations

from spnn.errors import DataError

__all__ = ["open_dataset"]


def open_dataset(spec: str, split: str, size: int = 32, n: int = 30000, cache: str | None = "default"):
    kind, _, arg = spec.partition(":")
    if kind == "avatars":
        from spnn.data.avatars import AvatarFaces

        if arg and not (arg.isdigit() and int(arg) > 0):
            raise DataError(f"dataset spec {spec!r}: the avatar size must be a positive integer (avatars:64)")
        return AvatarFaces(n=n, size=int(arg) if arg else size, split=split, root=cache)
    if kind in ("celeba", "celebahq", "folder"):
        from spnn.data import real

        opener = {"celeba": real.CelebA, "celebahq": real.CelebAMaskHQ, "folder": real.ImageFolderCSV}[kind]
        if not arg:
            raise DataError(f"dataset spec {spec!r} needs a folder: {kind}:PATH")
        from pathlib import Path

        if not Path(arg).is_dir():
            raise DataError(f"dataset spec {spec!r}: {arg} is not a folder; give the dataset's root folder")
        return opener(arg, split=split, size=size)
    raise DataError(f"unknown dataset {spec!r}; use avatars, celeba:DIR, celebahq:DIR or folder:DIR")

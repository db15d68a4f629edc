"""Open a dataset from a short spec string: ``avatars``, ``avatars:64``, ``avatars:v2``, ``avatars:64:v2``,
``avatars:r1`` (labels revision 1, `spnn.data.avatars.AvatarFaces`), ``celeba:DIR``, ``celebahq:DIR`` or
``folder:DIR`` (with ``DIR/attributes.csv``)."""

from __future__ import annotations

from spnn.errors import DataError

__all__ = ["open_dataset"]


def open_dataset(spec: str, split: str, size: int = 32, n: int = 30000, cache: str | None = "default"):
    kind, _, arg = spec.partition(":")
    if kind == "avatars":
        from spnn.data.avatars import LABELS_REVISION, VERSIONS, AvatarFaces

        version, revision = 1, LABELS_REVISION
        for part in arg.split(":") if arg else []:
            if part.isdigit() and int(part) > 0:
                size = int(part)
            elif part[:1] == "v" and part[1:].isdigit() and int(part[1:]) in VERSIONS:
                version = int(part[1:])
            elif part[:1] == "r" and part[1:].isdigit() and 1 <= int(part[1:]) <= LABELS_REVISION:
                revision = int(part[1:])
            else:
                raise DataError(f"dataset spec {spec!r}: {part!r} is neither a size (a positive integer: avatars:64), "
                                f"a version ({', '.join(f'v{v}' for v in VERSIONS)}: avatars:v2, avatars:64:v2) nor a "
                                f"labels revision (r1 to r{LABELS_REVISION}: avatars:r1)")
        return AvatarFaces(n=n, size=size, split=split, root=cache, version=version, labels_revision=revision)
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

"""Counterfactual pairs of the built-in faces: the same face with one attribute-bearing part changed.

Image i of seed s and its counterfactual share every part, colour and (version 2) nuisance draw but one part group
(hair style, hair colour, facial hair, accessory, mouth, eyes, eyebrows or skin), taken from another row of that
group's table (another attribute set) at the same place in the row, so that the two differ in their attributes and
in nothing the attributes do not name: which part within a row follows from the original's. The pairs feed
the SPNN's counterfactual term (`spnn.training.spnn`): a counterfactual's logits decoded with the original's
latents must give the counterfactual, so that the logits, not the latents, draw the attributes.

The change is a pure function of (seed, i), drawn from its own random stream: the same pairs on every machine.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from spnn.data.avatars import (
    FIXED_HAIR_COLOUR,
    HIDDEN_PARTS,
    HIDES_HAIR_COLOUR,
    LABELS_REVISION,
    PART_TABLES,
    attributes_of_part,
    check_version,
    default_cache_dir,
    render_parts,
    sample_nuisance,
    sample_parts,
)
from spnn.data.common import split_of
from spnn.errors import DataError
from spnn.io import atomic_write

__all__ = ["counterfactual_parts", "render_counterfactual", "edited_parts", "render_edited", "CounterfactualPairs",
           "GROUP_WEIGHTS", "HAIR_COLOURS"]

# the attributes the hair-colour group names (pink, the data's one colour without a name, sets none of them)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Red_Hair")

# how often each part group is the one changed; hair style and colour, which carry the hardest edits, twice as often
GROUP_WEIGHTS = {"top": 2.0, "hair_color": 2.0, "facial_hair": 1.0, "accessory": 1.0, "mouth": 1.5, "eyes": 1.0,
                 "eyebrows": 1.0, "skin_color": 1.0}


def counterfactual_parts(seed: int, index: int) -> tuple[dict, str]:
    """The parts of image ``index`` of ``seed`` with one group redrawn from another row of its table (another
    attribute set), and the group's name. Hair colour is changed only where head hair shows in the colour it is
    given (not bald, no hat, not a style drawn in one colour: `FIXED_HAIR_COLOUR`), glasses and facial hair only
    where the hair style does not cover them (`HIDDEN_PARTS`).

    >>> from spnn.data.avatars import labels_of
    >>> parts, _, _ = sample_parts(0, 7)
    >>> cf, group = counterfactual_parts(0, 7)
    >>> [k for k in parts if parts[k] != cf[k]] == [group], bool((labels_of(cf) != labels_of(parts)).any())
    (True, True)
    """
    parts, _, _ = sample_parts(seed, index)
    rng = np.random.default_rng([seed, index, 3])
    hair_shows = (not attributes_of_part("top", parts["top"]) & HIDES_HAIR_COLOUR
                  and parts["top"] not in FIXED_HAIR_COLOUR)
    hidden = HIDDEN_PARTS.get(parts["top"], {})  # groups the hair style covers: a change there would not show
    groups = [g for g in GROUP_WEIGHTS if (g != "hair_color" or hair_shows) and g not in hidden]
    weights = np.array([GROUP_WEIGHTS[g] for g in groups])
    group = groups[rng.choice(len(groups), p=weights / weights.sum())]
    table = PART_TABLES[group]
    current = attributes_of_part(group, parts[group])
    (position,) = [row[2].index(parts[group]) for row in table if parts[group] in row[2]]
    rows = [row for row in table if row[1] != current]
    probs = np.array([row[0] for row in rows])
    _, _, names = rows[rng.choice(len(rows), p=probs / probs.sum())]
    # the part at the same place in the new row: which part within a row (no attribute names it) follows from the
    # original, so the counterfactual's logits need to say only the new attributes
    return {**parts, group: names[position % len(names)]}, group


def render_counterfactual(seed: int, index: int, size: int = 32, version: int = 1,
                          labels_revision: int = LABELS_REVISION) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image (size, size, 3), uint8 labels (22,)) of the counterfactual of image ``index`` of ``seed``: the
    original's background and, in version 2, its nuisance draws (colours follow the new parts where they depend
    on them, e.g. a hair shade within the new colour class)."""
    from spnn.data.avatars import labels_of

    check_version(version)
    _, _, background = sample_parts(seed, index)
    parts, _ = counterfactual_parts(seed, index)
    nuisance = sample_nuisance(seed, index, parts) if version == 2 else None
    return render_parts(parts, background, nuisance, size), labels_of(parts, labels_revision)


def _nearest_row(group: str, part: str, keep) -> str:
    """The part of ``group`` whose row's attributes satisfy ``keep`` and differ least from ``part``'s (the first
    such row of the table on a tie), at ``part``'s place within its row."""
    table = PART_TABLES[group]
    current = attributes_of_part(group, part)
    (position,) = [row[2].index(part) for row in table if part in row[2]]
    rows = [row for row in table if keep(row[1])]
    _, _, names = min(rows, key=lambda row: len(row[1] ^ current))
    return names[position % len(names)]


def edited_parts(parts: dict, attribute: str, value: bool) -> dict:
    """The parts as drawn (`drawn_parts`) with ``attribute`` set to ``value`` by the smallest change the generator
    allows: the part group that names the attribute moves to the row whose attribute set differs least from the
    current one (a smile turned off keeps an open mouth open), the part at the same place in its row; where the
    new part would not show (a hair colour on a bald or hatted head or on a style drawn in one colour, glasses
    under a style drawn over them: `HIDDEN_PARTS`), the hair style moves too, and a new hair style never covers
    what the face shows. An edit a perfect editor could make: what a judge reads on it is the best an edit can
    score (`benchmarks/quality.py`, columns ``success_ideal`` and ``others_kept_ideal``).

    >>> from spnn.data.avatars import labels_of, AVATAR_ATTRIBUTES
    >>> parts, labels, _ = sample_parts(0, 7)
    >>> new = edited_parts(parts, "Bangs", True)
    >>> new["top"], int(labels_of(new)[AVATAR_ATTRIBUTES.index("Bangs")])
    ('MIA_WALLACE', 1)
    """
    from spnn.data.avatars import AVATAR_ATTRIBUTES, drawn_parts, labels_of
    from spnn.data.common import attribute_index

    column = attribute_index(AVATAR_ATTRIBUTES, attribute)
    new = drawn_parts(parts)  # what the picture shows: an edit starts from it
    if bool(labels_of(new)[column]) == bool(value):
        return new
    groups = [g for g, table in PART_TABLES.items() if any(attribute in row[1] for row in table)]
    if not groups:
        raise DataError(f"no part of the built-in faces names {attribute!r}")
    for group in groups:  # Sunglasses and Eyeglasses share the accessory group, the hair colours one group
        new[group] = _nearest_row(group, new[group], lambda attrs: (attribute in attrs) == bool(value))
    if "hair_color" in groups and attributes_of_part("top", new["top"]) & HIDES_HAIR_COLOUR:
        new["top"] = _nearest_row("top", new["top"], lambda attrs: not attrs & HIDES_HAIR_COLOUR)

    def shows_all(style: str) -> bool:  # draws a new colour as given and covers nothing the face has
        fixed = style in FIXED_HAIR_COLOUR and "hair_color" in groups
        return not fixed and all(new[g] == part for g, part in HIDDEN_PARTS.get(style, {}).items())

    if not shows_all(new["top"]):  # its neighbour in the row
        (row,) = [r[2] for r in PART_TABLES["top"] if new["top"] in r[2]]
        new["top"] = next(p for p in row[row.index(new["top"]):] + row if shows_all(p))
    if bool(labels_of(new)[column]) != bool(value):
        raise DataError(f"could not set {attribute}={int(bool(value))} on parts {parts}")  # pragma: no cover
    return new


def render_edited(seed: int, index: int, attribute: str, value: bool, size: int = 32,
                  version: int = 1) -> np.ndarray:
    """uint8 image (size, size, 3) of image ``index`` of ``seed`` with `edited_parts`: the original's background and,
    in version 2, its nuisance draws."""
    check_version(version)
    parts, _, background = sample_parts(seed, index)
    new = edited_parts(parts, attribute, value)
    nuisance = sample_nuisance(seed, index, new) if version == 2 else None
    return render_parts(new, background, nuisance, size)


def _render_many(args: tuple[int, list[int], int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    seed, indices, size, version, revision = args
    out = [render_counterfactual(seed, i, size, version, revision) for i in indices]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


class CounterfactualPairs:
    """The counterfactuals of a built-in face dataset (`AvatarFaces`), aligned with its images, cached on disk.

    ``pairs(k)`` draws k random (original, counterfactual) image pairs as [-1, 1] tensors, with torch's global
    random state (which training checkpoints and restores).

    >>> from spnn.data.avatars import AvatarFaces
    >>> ds = AvatarFaces(n=20, split="test", root=None, progress=False)
    >>> pairs = CounterfactualPairs(ds, root=None)
    >>> a, b = pairs(3)
    >>> a.shape == b.shape == (3, 3, 32, 32), bool((pairs.labels != ds.labels).any(1).all())
    (True, True)
    """

    def __init__(self, dataset, root: str | os.PathLike | None = "default", workers: int | None = None):
        for name in ("index", "seed", "size", "version", "n"):
            if not hasattr(dataset, name):
                raise DataError("counterfactual pairs need the built-in faces (AvatarFaces); this dataset has no "
                                f"{name!r}: drop the counterfactual term or train on the built-in faces")
        self.dataset = dataset
        self.images, self.labels = self._load(root, workers)
        self._eligible: dict[tuple[int, ...], np.ndarray] = {}  # `blends`' pairs per attribute set

    def _load(self, root, workers) -> tuple[np.ndarray, np.ndarray]:
        ds = self.dataset
        revision = getattr(ds, "labels_revision", LABELS_REVISION)  # the pairs' labels follow the dataset's
        path = None
        if root is not None:
            root = default_cache_dir() if root == "default" else Path(root)
            split = int(split_of(np.asarray(ds.index[:1]))[0]) if len(ds.index) else 0
            name = (f"counterfactuals-v{ds.version}-r{revision}-s{ds.seed}-{ds.size}px-n{ds.n}-split{split}-"
                    f"k{len(ds.index)}.npz")  # r: the labels revision (the pairs it draws follow the labels)
            path = root / name
            if path.exists():
                try:
                    with np.load(path) as f:
                        return f["images"], f["labels"]
                except Exception as e:  # noqa: BLE001 - any failure to read means a corrupt cache
                    raise DataError(f"{path}: corrupt counterfactual cache ({type(e).__name__}: {e}); delete it "
                                    "to regenerate") from None
        indices = [int(i) for i in ds.index]
        chunks = [indices[s:s + 250] for s in range(0, len(indices), 250)]
        jobs = [(ds.seed, c, ds.size, ds.version, revision) for c in chunks]
        workers = workers or min(len(jobs), os.cpu_count() or 1)
        if workers <= 1:
            results = [_render_many(j) for j in jobs]
        else:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_render_many, jobs))
        images, labels = np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
        if path is not None:
            def write(tmp: str) -> None:
                with open(tmp, "wb") as f:
                    np.savez_compressed(f, images=images, labels=labels)

            atomic_write(path, write)
        return images, labels

    def __call__(self, k: int, kept: bool = False):
        """k random (original, counterfactual) pairs; with ``kept`` also a (k, attributes) 0/1 mask of the
        attributes the two share (the ones the change leaves alone)."""
        import torch

        from spnn.data.common import to_tensor_images

        picks = (torch.rand(k, dtype=torch.float64).numpy() * len(self.images)).astype(np.int64)
        picks = np.minimum(picks, len(self.images) - 1)
        pair = to_tensor_images(self.dataset.images[picks]), to_tensor_images(self.images[picks])
        if not kept:
            return pair
        same = torch.from_numpy((np.asarray(self.dataset.labels)[picks] == self.labels[picks]).astype(np.float32))
        return (*pair, same)

    def _differing_only_in(self, attributes: tuple[int, ...], original: np.ndarray) -> np.ndarray:
        """Indices of the pairs whose labels differ, and only in ``attributes`` (computed once per attribute set:
        `blends` runs at every training step)."""
        cache = self._eligible
        if attributes not in cache:
            differ = original != self.labels
            outside = np.ones(differ.shape[1], dtype=bool)
            outside[list(attributes)] = False
            cache[attributes] = np.flatnonzero(differ.any(1) & ~(differ & outside).any(1))
        return cache[attributes]

    def blends(self, k: int, attributes: list[int], band: float = 0.25):
        """k pixel blends x = (1 - a) x + a x_cf, a ~ U(0, 1), of pairs that differ only in the given attribute
        columns (e.g. `HAIR_COLOURS`: the same face in two hair colours), and their labels: the original's for
        a < band, the counterfactual's for a > 1 - band, and in between the two's common labels, the differing
        attributes off (an in-between shade is neither colour, as pink is none). Torch's global random state.

        >>> from spnn.data.avatars import AvatarFaces
        >>> ds = AvatarFaces(n=60, split="test", root=None, progress=False)
        >>> pairs = CounterfactualPairs(ds, root=None)
        >>> x, labels = pairs.blends(4, [ds.attribute_names.index(a) for a in HAIR_COLOURS])
        >>> x.shape == (4, 3, 32, 32), labels.shape == (4, 22)
        (True, True)
        """
        import torch

        from spnn.data.common import to_tensor_images

        if not 0 <= band <= 0.5:
            raise DataError(f"blend band = {band!r}: a fraction in [0, 0.5]")
        original = np.asarray(self.dataset.labels)
        eligible = self._differing_only_in(tuple(attributes), original)
        if len(eligible) == 0:
            raise DataError("no counterfactual pair differs only in the given attributes; blends need pairs of the "
                            "same face in two hair colours (a larger dataset has them)")
        picks = eligible[np.minimum((torch.rand(k, dtype=torch.float64).numpy() * len(eligible)).astype(np.int64),
                                    len(eligible) - 1)]
        a, b = to_tensor_images(self.dataset.images[picks]), to_tensor_images(self.images[picks])
        alpha = torch.rand(k, 1, 1, 1)
        la = torch.from_numpy(original[picks].astype(np.float32))
        lb = torch.from_numpy(self.labels[picks].astype(np.float32))
        w = alpha.view(k, 1)
        labels = torch.where(w < band, la, torch.where(w > 1 - band, lb, la * lb))
        return (1 - alpha) * a + alpha * b, labels

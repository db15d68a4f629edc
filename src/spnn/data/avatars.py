"""Built-in offline dataset: procedural cartoon faces with 22 binary attributes.

Faces are drawn from SVG parts by ``python-avatars`` and rasterised by ``resvg-py``. Image i of seed s
is a pure function of (s, i): the same bytes on every machine and in any order of generation.
Attributes use CelebA names where the meaning matches; how each maps to parts:

=====================  =====================================================================
attribute              parts
=====================  =====================================================================
5_o_Clock_Shadow       facial hair "beard light" (stubble)
Arched_Eyebrows        eyebrows "raised excited" (both variants)
Bald                   no hair
Bangs                  hair "mia wallace" (straight, with a fringe)
Black/Blond/Brown/     head-hair colour as drawn (black; blonde, golden, platinum; brown, dark brown;
Gray/Red_Hair          silver grey; auburn, red); 0 for all when bald or wearing a hat; python-avatars
                       draws "straight 2" auburn and "shaved sides" golden blond whatever the colour
                       sampled (`FIXED_HAIR_COLOUR`; labels revision 2, 2026-12-07: revision 1 named the
                       sampled colour, wrong on 4.9% of the images)
(all)                  labels name the parts drawn: "long hair curly" covers glasses and facial hair, so its
                       faces have neither (`HIDDEN_PARTS`; labels revision 3, 2026-12-07: revision 2 named
                       the parts sampled there)
Bushy_Eyebrows         eyebrows "unibrow natural"
Eyeglasses             any glasses (prescription 1/2, round, wayfarers 1/2, kurt, sunglasses 1/2)
Sunglasses             dark glasses (sunglasses 1/2, kurt); implies Eyeglasses
Mouth_Slightly_Open    mouth smile, tongue, concerned, scream, disbelief
Smiling                mouth smile, tongue, twinkle, default
Mustache               moustache fancy or magnum (no beard)
No_Beard               no medium or majestic beard
Narrow_Eyes            eyes squint, happy, closed
Pale_Skin              skin "pale"
Receding_Hairline      hair "sides" (bald on top)
Straight_Hair          long straight styles (straight 1/2, strand, long-not-too-long, bob, mia wallace)
Wavy_Hair              big hair, curvy, short waved, shaggy, long curly
Wearing_Hat            hat, turban, winter hats 1-4 (hair hidden)
=====================  =====================================================================

Non-attribute variation (the null space): other hair styles and colours (pastel pink), skin tones,
clothing type and colour, other eyebrows, nose, eyes, mouths within a class, background tone.
Exclusive parts keep combinations consistent (no hat on a bald head, one mouth, one accessory).

Versions (``version=``): 1, the shipped models' data; 2, the same parts and labels for every index plus nuisance
that no attribute names, drawn from a separate random stream: continuous skin tone (pale stays pale), hair shade
within its colour class, any clothing colour, a two-colour background gradient, position, scale and small rotation
of the drawing, and directional light (`sample_nuisance`).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from spnn.data.common import ArrayDataset, split_of
from spnn.errors import DataError
from spnn.io import atomic_write

__all__ = ["AVATAR_ATTRIBUTES", "AvatarFaces", "render_avatar", "render_parts", "sample_parts", "sample_nuisance",
           "labels_of", "labels_for", "drawn_hair_colour", "drawn_parts", "generate", "VERSIONS", "PART_TABLES",
           "FIXED_HAIR_COLOUR", "HIDDEN_PARTS", "LABELS_REVISION"]

AVATAR_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair",
    "Bushy_Eyebrows", "Eyeglasses", "Gray_Hair", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Pale_Skin", "Receding_Hairline", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Hat",
    "Sunglasses", "Red_Hair",
]
VIEWBOX = "22 10 220 220"  # square crop around head and collar of the 264 x 280 drawing
VERSIONS = (1, 2)

# (probability, attributes set, part names); choices within a row are uniform
HAIR = [
    (0.08, {"Bald"}, ["NONE"]),
    (0.12, {"Wearing_Hat"}, ["HAT", "TURBAN", "WINTER_HAT_1", "WINTER_HAT_2", "WINTER_HAT_3", "WINTER_HAT_4"]),
    (0.05, {"Receding_Hairline"}, ["SIDES"]),
    (0.20, {"Straight_Hair"}, ["STRAIGHT_1", "STRAIGHT_2", "STRAIGHT_STRAND", "LONG_NOT_TOO_LONG", "BOB"]),
    (0.05, {"Straight_Hair", "Bangs"}, ["MIA_WALLACE"]),
    (0.15, {"Wavy_Hair"}, ["BIG_HAIR", "CURVY", "SHORT_WAVED", "SHAGGY", "LONG_HAIR_CURLY"]),
    (0.35, set(), ["SHORT_FLAT", "SHORT_ROUND", "CAESAR", "CAESAR_SIDE_PART", "SHAVED_SIDES", "QUIFF",
                   "POMPADOUR", "BUN", "SHORT_CURLY", "FRIZZLE", "FRO", "CURLY", "DREADS", "BUZZCUT",
                   "SHORT_DREADS_1", "PIXIE", "FRIDA", "MOWGLI", "ELVIS"]),
]
HAIR_COLOR = [
    (0.25, {"Black_Hair"}, ["BLACK"]),
    (0.20, {"Blond_Hair"}, ["BLONDE", "BLONDE_GOLDEN", "PLATINUM"]),
    (0.25, {"Brown_Hair"}, ["BROWN", "BROWN_DARK"]),
    (0.12, {"Gray_Hair"}, ["SILVER_GRAY"]),
    (0.13, {"Red_Hair"}, ["AUBURN", "RED"]),
    (0.05, set(), ["PASTEL_PINK"]),
]
FACIAL_HAIR = [
    (0.55, {"No_Beard"}, ["NONE"]),
    (0.10, {"No_Beard", "5_o_Clock_Shadow"}, ["BEARD_LIGHT"]),
    (0.15, set(), ["BEARD_MEDIUM", "BEARD_MAGESTIC"]),
    (0.20, {"No_Beard", "Mustache"}, ["MOUSTACHE_FANCY", "MOUSTACHE_MAGNUM"]),
]
ACCESSORY = [
    (0.62, set(), ["NONE"]),
    (0.23, {"Eyeglasses"}, ["PRESCRIPTION_1", "PRESCRIPTION_2", "ROUND", "WAYFARERS", "WAYFARERS_2"]),
    (0.15, {"Eyeglasses", "Sunglasses"}, ["SUNGLASSES", "SUNGLASSES_2", "KURT"]),
]
MOUTH = [
    (0.25, {"Smiling", "Mouth_Slightly_Open"}, ["SMILE", "TONGUE"]),
    (0.25, {"Smiling"}, ["TWINKLE", "DEFAULT"]),
    (0.20, {"Mouth_Slightly_Open"}, ["CONCERNED", "SCREAM_OPEN", "DISBELIEF"]),
    (0.30, set(), ["SERIOUS", "SAD", "EATING"]),
]
EYES = [
    (0.25, {"Narrow_Eyes"}, ["SQUINT", "HAPPY", "CLOSED"]),
    (0.75, set(), ["DEFAULT", "SIDE", "SURPRISED", "EYE_ROLL"]),
]
EYEBROWS = [
    (0.20, {"Arched_Eyebrows"}, ["RAISED_EXCITED", "RAISED_EXCITED_NATURAL"]),
    (0.15, {"Bushy_Eyebrows"}, ["UNIBROW_NATURAL"]),
    (0.65, set(), ["DEFAULT", "DEFAULT_NATURAL", "FLAT_NATURAL", "ANGRY", "SAD_CONCERNED", "FROWN_NATURAL",
                   "UP_DOWN"]),
]
SKIN = [(0.15, {"Pale_Skin"}, ["PALE"]),
        (0.85, set(), ["TANNED", "YELLOW", "LIGHT", "BROWN", "DARK_BROWN", "BLACK"])]
CLOTHING = ["BLAZER_SHIRT", "BLAZER_SWEATER", "COLLAR_SWEATER", "GRAPHIC_SHIRT", "HOODIE", "OVERALL",
            "SHIRT_CREW_NECK", "SHIRT_SCOOP_NECK", "SHIRT_V_NECK"]
CLOTHING_COLOR = ["BLACK", "BLUE_01", "BLUE_02", "BLUE_03", "GRAY_01", "GRAY_02", "HEATHER", "PASTEL_BLUE",
                  "PASTEL_GREEN", "PASTEL_ORANGE", "PASTEL_YELLOW", "PINK", "RED", "WHITE"]
NOSE = ["DEFAULT", "SMALL", "WIDE"]


def _pick(rng: np.random.Generator, table) -> tuple[set, str]:
    probs = np.array([row[0] for row in table])
    row = table[rng.choice(len(table), p=probs / probs.sum())]
    return row[1], row[2][rng.integers(len(row[2]))]


# the attribute-bearing part groups, in the order `sample_parts` draws them
PART_TABLES = {"top": HAIR, "hair_color": HAIR_COLOR, "facial_hair": FACIAL_HAIR, "accessory": ACCESSORY,
               "mouth": MOUTH, "eyes": EYES, "eyebrows": EYEBROWS, "skin_color": SKIN}
HIDES_HAIR_COLOUR = {"Bald", "Wearing_Hat"}
# python-avatars draws these hair styles in one colour whatever hair colour it is given (STRAIGHT_2 auburn,
# SHAVED_SIDES a golden blond; `tests/test_data.py` renders each style in two colours to find them): their hair
# colour labels name the colour drawn (labels revision 2)
FIXED_HAIR_COLOUR = {"STRAIGHT_2": "AUBURN", "SHAVED_SIDES": "BLONDE_GOLDEN"}
# python-avatars draws "long hair curly" over the face's glasses and facial hair (`tests/test_data.py` renders every
# style with each group's parts to find it): the picture shows neither, whatever was sampled, so their labels
# name the part drawn in their place (labels revision 3)
HIDDEN_PARTS = {"LONG_HAIR_CURLY": {"accessory": "NONE", "facial_hair": "NONE"}}
# 1 (before 2026-12-07): the sampled hair colour, wrong for FIXED_HAIR_COLOUR's styles; 2 (2026-12-07): the colour
# drawn, but glasses and facial hair named under HIDDEN_PARTS' style; 3: the parts drawn
LABELS_REVISION = 3


def attributes_of_part(group: str, part: str) -> set[str]:
    """The attributes that part ``part`` of ``group`` sets (its row of the group's table)."""
    for _, attrs, names in PART_TABLES[group]:
        if part in names:
            return attrs
    raise DataError(f"unknown {group} part {part!r}")


def drawn_hair_colour(parts: dict) -> str:
    """The head hair's colour as drawn: the sampled one, or the one python-avatars draws the style in
    (`FIXED_HAIR_COLOUR`)."""
    return FIXED_HAIR_COLOUR.get(parts["top"], parts["hair_color"])


def drawn_parts(parts: dict, revision: int = LABELS_REVISION) -> dict:
    """The parts as the picture shows them, which the labels of ``revision`` name: from revision 2 the hair colour
    drawn (`drawn_hair_colour`), from revision 3 the parts a hair style covers replaced by what is drawn instead
    (`HIDDEN_PARTS`); revision 1 the parts sampled."""
    check_labels_revision(revision)
    shown = dict(parts)
    if revision >= 2:
        shown["hair_color"] = drawn_hair_colour(parts)
    if revision >= 3:
        shown.update(HIDDEN_PARTS.get(parts["top"], {}))
    return shown


def labels_of(parts: dict, revision: int = LABELS_REVISION) -> np.ndarray:
    """The 22 labels of a set of parts as drawn (`drawn_parts`); hair colour counts only with head hair (not bald,
    no hat). ``revision``: an older labels revision (1: the labels the shipped SPNN was trained with).

    >>> parts, labels, _ = sample_parts(0, 5)
    >>> bool((labels_of(parts) == labels).all())
    True
    """
    shown = drawn_parts(parts, revision)
    attrs: set[str] = set()
    for group in PART_TABLES:
        a = attributes_of_part(group, shown[group])
        if group == "hair_color" and attrs & HIDES_HAIR_COLOUR:
            a = set()
        attrs |= a
    return np.array([a in attrs for a in AVATAR_ATTRIBUTES], dtype=np.uint8)


def check_labels_revision(revision: int) -> None:
    """Refuse a labels revision that does not exist."""
    if isinstance(revision, bool) or revision not in range(1, LABELS_REVISION + 1):
        raise DataError(f"unknown avatar labels revision {revision!r}; choose one of "
                        f"{list(range(1, LABELS_REVISION + 1))}")


def labels_for(seed: int, indices, revision: int = LABELS_REVISION) -> np.ndarray:
    """The labels of images ``indices`` of ``seed`` under a labels ``revision`` (computed from their parts)."""
    def one(i: int) -> np.ndarray:
        parts, labels, _ = sample_parts(seed, i)  # labels of the current revision
        return labels if revision == LABELS_REVISION else labels_of(parts, revision)

    return np.stack([one(int(i)) for i in indices])


def sample_parts(seed: int, index: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Parts of image ``index`` of ``seed``, its attribute vector, and its background colour."""
    rng = np.random.default_rng([seed, index])
    parts: dict[str, str] = {}
    for key, table in PART_TABLES.items():
        _, parts[key] = _pick(rng, table)
    parts["clothing"] = CLOTHING[rng.integers(len(CLOTHING))]
    parts["clothing_color"] = CLOTHING_COLOR[rng.integers(len(CLOTHING_COLOR))]
    parts["nose"] = NOSE[rng.integers(len(NOSE))]
    background = rng.uniform(0.25, 0.95, size=3)
    return parts, labels_of(parts), background


def check_version(version: int) -> None:
    """Refuse an avatar dataset version that does not exist."""
    if version not in VERSIONS:
        raise DataError(f"unknown avatar dataset version {version!r}; choose one of {list(VERSIONS)}")


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * min(max(c, 0.0), 1.0))):02X}" for c in rgb)


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)])


def _shade(rng: np.random.Generator, hex_colour: str, spread: float) -> str:
    """The colour scaled in brightness by U(1 - spread, 1 + spread), with a little per-channel jitter."""
    rgb = _rgb(hex_colour) * rng.uniform(1 - spread, 1 + spread) + rng.normal(0, spread / 4, 3)
    return _hex(rgb)


NON_PALE_SKIN = ["#EDB98A", "#F8D25C", "#FD9841", "#D08B5B", "#AE5D29", "#614335"]  # light to dark, pale excluded


def sample_nuisance(seed: int, index: int, parts: dict) -> dict:
    """Version-2 nuisance of image ``index`` of ``seed`` (none of it named by an attribute): colours as hex
    strings, a background gradient (top, bottom RGB), the drawing's scale, rotation (degrees), shift (fraction of
    the crop) and a directional light (angle, strength)."""
    import python_avatars as pa

    rng = np.random.default_rng([seed, index, 2])
    if parts["skin_color"] == "PALE":
        skin = _shade(rng, pa.SkinColor.PALE.value, 0.03)
    else:  # anywhere along the non-pale tones, not only the 6 named ones
        t = rng.uniform(0, len(NON_PALE_SKIN) - 1)
        lo = int(np.floor(t))
        hi = min(lo + 1, len(NON_PALE_SKIN) - 1)
        rgb = (1 - (t - lo)) * _rgb(NON_PALE_SKIN[lo]) + (t - lo) * _rgb(NON_PALE_SKIN[hi])
        skin = _shade(rng, _hex(rgb), 0.04)
    spread = 0.04 if parts["hair_color"] == "SILVER_GRAY" else 0.12
    return {
        "skin": skin,
        "hair": _shade(rng, pa.HairColor[parts["hair_color"]].value, spread),
        "clothing": _hex(rng.uniform(0.05, 0.95, 3)),
        "background": (rng.uniform(0.2, 0.95, 3), rng.uniform(0.2, 0.95, 3)),
        "scale": float(rng.uniform(0.88, 1.08)),
        "rotation": float(rng.uniform(-8, 8)),
        "shift": tuple(float(v) for v in rng.uniform(-0.06, 0.06, 2)),
        "light": (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.0, 0.25))),
    }


def _avatar(parts: dict, nuisance: dict | None = None):
    import python_avatars as pa

    colours = ({"skin_color": nuisance["skin"], "hair_color": nuisance["hair"], "facial_hair_color": nuisance["hair"],
                "clothing_color": nuisance["clothing"]} if nuisance else
               {"skin_color": pa.SkinColor[parts["skin_color"]], "hair_color": pa.HairColor[parts["hair_color"]],
                "facial_hair_color": pa.HairColor[parts["hair_color"]],
                "clothing_color": pa.ClothingColor[parts["clothing_color"]]})

    top = parts["top"]
    top_enum = pa.HatType[top] if top in pa.HatType.__members__ else pa.HairType[top]
    return pa.Avatar(
        style=pa.AvatarStyle.TRANSPARENT, top=top_enum, facial_hair=pa.FacialHairType[parts["facial_hair"]],
        accessory=pa.AccessoryType[parts["accessory"]], mouth=pa.MouthType[parts["mouth"]],
        eyes=pa.EyeType[parts["eyes"]], eyebrows=pa.EyebrowType[parts["eyebrows"]],
        clothing=pa.ClothingType[parts["clothing"]], nose=pa.NoseType[parts["nose"]],
        hat_color=pa.ClothingColor[parts["clothing_color"]], **colours,
    )


def _view_box(nuisance: dict | None) -> str:
    """The crop: v1's square around head and collar, zoomed by 1 / scale and shifted in version 2."""
    if nuisance is None:
        return VIEWBOX
    x, y, w, _ = (float(v) for v in VIEWBOX.split())
    side = w / nuisance["scale"]
    cx = x + w / 2 + nuisance["shift"][0] * w
    cy = y + w / 2 + nuisance["shift"][1] * w
    return f"{cx - side / 2:.2f} {cy - side / 2:.2f} {side:.2f} {side:.2f}"


def _light_and_background(rgba: np.ndarray, background, nuisance: dict | None) -> np.ndarray:
    h, w = rgba.shape[:2]
    alpha = rgba[..., 3:]
    if nuisance is None:
        return rgba[..., :3] * alpha + background * (1.0 - alpha)
    v = np.linspace(0, 1, h)[:, None, None]
    top, bottom = nuisance["background"]
    rgb = rgba[..., :3] * alpha + (top * (1 - v) + bottom * v) * (1.0 - alpha)
    angle, strength = nuisance["light"]
    u = np.linspace(-1, 1, w)[None, :]
    field = 1 + strength * (np.cos(angle) * u + np.sin(angle) * np.linspace(-1, 1, h)[:, None])
    return np.clip(rgb * field[..., None], 0, 1)


def render_avatar(seed: int, index: int, size: int = 32, version: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image (size, size, 3), uint8 labels (22,)) of image ``index`` of ``seed`` in dataset ``version``;
    the labels do not depend on the version.

    >>> a, la = render_avatar(0, 3, 16)
    >>> b, lb = render_avatar(0, 3, 16, version=2)
    >>> a.shape, bool((la == lb).all()), bool((a != b).any())
    ((16, 16, 3), True, True)
    """
    check_version(version)
    parts, labels, background = sample_parts(seed, index)
    return render_parts(parts, background, sample_nuisance(seed, index, parts) if version == 2 else None, size), labels


def render_parts(parts: dict, background, nuisance: dict | None, size: int = 32) -> np.ndarray:
    """uint8 image (size, size, 3) of a set of parts on ``background`` (RGB in [0, 1]), with version-2
    ``nuisance`` (`sample_nuisance`) or none (version 1)."""
    import resvg_py
    from PIL import Image

    view_box = _view_box(nuisance)
    svg = _avatar(parts, nuisance).render().replace(
        'width="264px" height="280px" viewBox="0 0 264 280"',
        f'width="{size}" height="{size}" viewBox="{view_box}"')
    if nuisance is not None:  # small rotation of the drawing about the crop's centre
        x, y, w, _ = (float(v) for v in view_box.split())
        head, _, body = svg.partition(">")
        body, _, _ = body.rpartition("</svg>")
        turn = f'rotate({nuisance["rotation"]:.2f} {x + w / 2:.2f} {y + w / 2:.2f})'
        svg = f'{head}><g transform="{turn}">{body}</g></svg>'
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    rgba = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.float64) / 255.0
    rgb = _light_and_background(rgba, background, nuisance)
    return np.round(rgb * 255.0).astype(np.uint8)


def _render_range(args: tuple[int, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    seed, start, stop, size, version = args
    out = [render_avatar(seed, i, size, version) for i in range(start, stop)]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def generate(n: int, size: int = 32, seed: int = 0, workers: int | None = None,
             progress: bool = True, version: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Render images 0..n-1 of ``seed`` in parallel: (uint8 N x size x size x 3, uint8 N x 22)."""
    from tqdm.auto import tqdm

    chunk = 250
    jobs = [(seed, s, min(s + chunk, n), size, version) for s in range(0, n, chunk)]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    bar = tqdm(total=n, desc=f"rendering {size}x{size} avatars", disable=not progress, unit="img")
    results = []
    if workers <= 1:
        for job in jobs:
            results.append(_render_range(job))
            bar.update(job[2] - job[1])
    else:
        with ProcessPoolExecutor(workers) as pool:
            for job, res in zip(jobs, pool.map(_render_range, jobs)):
                results.append(res)
                bar.update(job[2] - job[1])
    bar.close()
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def default_cache_dir() -> Path:
    return Path(os.environ.get("SPNN_CACHE", Path.home() / ".cache" / "spnn"))


class AvatarFaces(ArrayDataset):
    """The built-in procedural faces, cached on disk as a compressed ``.npz``.

    Split membership is fixed by index (`split_of`): 80% train, 10% val, 10% test. ``labels_revision``: 3 (the
    default) names the parts drawn (the labels the shipped SPNN, version 3, was trained and calibrated with), 2 the
    hair colour drawn, 1 the colour sampled (version 2's; `FIXED_HAIR_COLOUR`, `HIDDEN_PARTS`).

    >>> ds = AvatarFaces(n=20, size=32, split="test", root=None, progress=False)
    >>> len(ds), ds.image_shape, len(ds.attribute_names)
    (2, (3, 32, 32), 22)
    """

    def __init__(self, n: int = 30000, size: int = 32, split: str | None = "train", seed: int = 0,
                 root: str | os.PathLike | None = "default", progress: bool = True, version: int = 1,
                 labels_revision: int = LABELS_REVISION):
        check_labels_revision(labels_revision)
        images, labels = load_or_generate(n, size, seed, root, progress, version)
        index = np.arange(n)
        if split is not None:
            names = ["train", "val", "test"]
            if split not in names:
                raise DataError(f"unknown split {split!r}; choose one of {names}")
            keep = split_of(index) == names.index(split)
            images, labels, index = images[keep], labels[keep], index[keep]
        if labels_revision != LABELS_REVISION:
            labels = labels_for(seed, index, labels_revision)
        super().__init__(images, labels, AVATAR_ATTRIBUTES)
        self.index, self.labels_revision = index, labels_revision
        self.size, self.version, self.seed, self.n = size, version, seed, n

    @classmethod
    def head(cls, split: str, count: int, size: int = 32, seed: int = 0, n: int = 30000,
             root: str | os.PathLike | None = "default", version: int = 1,
             labels_revision: int = LABELS_REVISION) -> AvatarFaces:
        """The first ``count`` images of ``split`` among images 0..n-1: sliced from a cache of ``n`` images when
        one exists, else rendered alone (image i is a pure function of (seed, i)), without building the cache.
        ``labels_revision``: as for the constructor.

        >>> AvatarFaces.head("test", 2, root=None).index.tolist()
        [9, 19]
        """
        check_labels_revision(labels_revision)
        names = ["train", "val", "test"]
        if split not in names:
            raise DataError(f"unknown split {split!r}; choose one of {names}")
        index = np.arange(n)[split_of(np.arange(n)) == names.index(split)][:count]
        cached = _cached(root, n, size, seed, version)
        if cached is not None:
            images, labels = load_or_generate(n, size, seed, root, progress=False, version=version)
            images, labels = images[index], labels[index]
        else:
            out = [render_avatar(seed, int(i), size, version) for i in index]
            images, labels = np.stack([o[0] for o in out]), np.stack([o[1] for o in out])
        if labels_revision != LABELS_REVISION:
            labels = labels_for(seed, index, labels_revision)
        obj = cls.__new__(cls)
        ArrayDataset.__init__(obj, images, labels, AVATAR_ATTRIBUTES)
        obj.index, obj.size, obj.version, obj.seed, obj.n = index, size, version, seed, n
        obj.labels_revision = labels_revision
        return obj


def _cached(root, n: int, size: int, seed: int, version: int = 1) -> Path | None:
    """A cache file holding at least images 0..n-1, if any."""
    if root is None:
        return None
    root = default_cache_dir() if root == "default" else Path(root)
    for path in root.glob(f"avatars-v{version}-s{seed}-{size}px-n*.npz"):
        if int(path.stem.rsplit("-n", 1)[1]) >= n:
            return path
    return None


def cache_path(root: str | os.PathLike, n: int, size: int, seed: int, version: int = 1) -> Path:
    return Path(root) / f"avatars-v{version}-s{seed}-{size}px-n{n}.npz"


def load_or_generate(n: int, size: int, seed: int, root: str | os.PathLike | None = "default",
                     progress: bool = True, version: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Read the cache for (n, size, seed, version) under ``root`` (a larger cached n is sliced), else render
    and write it atomically. ``root=None`` never touches the disk."""
    check_version(version)
    if root is None:
        return generate(n, size, seed, progress=progress, version=version)
    root = default_cache_dir() if root == "default" else Path(root)
    candidates = sorted(root.glob(f"avatars-v{version}-s{seed}-{size}px-n*.npz"),
                        key=lambda p: int(p.stem.rsplit("-n", 1)[1]))
    for path in candidates:
        if int(path.stem.rsplit("-n", 1)[1]) >= n:
            try:
                with np.load(path) as f:
                    images, labels = f["images"], f["labels"]
                    revision = int(f["labels_revision"]) if "labels_revision" in f.files else 1
            except Exception as e:  # noqa: BLE001 - truncated zip, missing arrays, bad dtype: all mean corrupt
                raise DataError(f"{path}: corrupt avatar cache ({type(e).__name__}: {e}); delete it to "
                                "regenerate") from None
            if revision < LABELS_REVISION:  # an older cache: the images stand, the labels are made again
                labels = labels_for(seed, range(len(labels)))
                with contextlib.suppress(OSError):  # written back once; a read-only cache: relabelled at each read
                    _write_cache(path, images, labels)
            return images[:n], labels[:n]
    images, labels = generate(n, size, seed, progress=progress, version=version)
    _write_cache(cache_path(root, n, size, seed, version), images, labels)
    return images, labels


def _write_cache(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, images=images, labels=labels, attributes=np.array(AVATAR_ATTRIBUTES),
                                labels_revision=np.array(LABELS_REVISION))

    atomic_write(path, write)


def label_table(labels: np.ndarray, names: Sequence[str] = AVATAR_ATTRIBUTES) -> dict[str, float]:
    """Frequency of each attribute."""
    return {name: float(labels[:, i].mean()) for i, name in enumerate(names)}

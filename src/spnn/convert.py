"""Load the authors' SPNN checkpoints (github yamitehr/SPNN) into `spnn.SPNN`.

Their state dicts use ``pinn.blocks.{i}.{mix,s,t,r}...`` keys; ours drop ``pinn.`` and call the mixing
parameter ``weight`` (their Cayley ``A_unconstrained``, Householder ``V``). Layouts come from:

- a named preset (``celeba32``, ``celeba64``, ``celeba256`` with 40 attributes; ``celeba256`` is the
  layout of the released ``spnn_celebahq_256.pth``), detected from tensor shapes when not given;
- their custom-layout mode: a list ``[["PixelUnshuffleBlock", {"r": 4}], ["ConvPINNBlock", {...}], ...]``
  (stored as ``layout`` in a safetensors file's metadata, or passed in). Each block keeps its own
  ``mix_type``, ``img_size`` (default 32, as their block's), ``hidden`` (default 64) and ``feat_size``; their
  sub-network rule is reproduced (`authors_subnet`): the hand-written nets of their presets wherever a
  block's channel counts match them, their generic ConvMLP elsewhere. A last block whose map is larger than
  1x1 gives a feature-map output (C, H, W).

Code versions (``version``, `AUTHORS_VERSIONS`): their Cayley matrix is W = solve(I + A + eps I, I - A),
inverted by W^T. At commit ``a901837`` (the public snapshot; the reference trajectory) eps = 1e-6 and the
solve runs in the model's dtype; their later commits use eps = 1e-4 with the solve in float32
(``"later"``); ``"exact"`` is ours (eps = 0, an exact inverse). Which version trained the released
``spnn_celebahq_256.pth`` is not stated; logits of the versions differ by ~3e-5 (a901837 vs exact) and
3-5e-4 relative (later vs exact) at 32/64 pixels.

A float64 state dict loads as a float64 network (``dtype`` overrides).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from spnn.blocks import PixelUnshuffle, SurjectiveCoupling
from spnn.errors import CheckpointError
from spnn.io import read_metadata, read_tensors, safe_torch_load
from spnn.network import SPNN, load_state_checked

__all__ = ["AUTHORS_PRESETS", "AUTHORS_VERSIONS", "authors_preset", "authors_custom", "authors_subnet",
           "convert_authors_state", "load_authors_spnn", "detect_preset", "CELEBA_ATTRIBUTES"]

# Cayley options of each code version of theirs (see the module docstring)
AUTHORS_VERSIONS: dict[str, dict] = {
    "a901837": {"eps": 1e-6},
    "later": {"eps": 1e-4, "solve_dtype": "float32"},
    "exact": {},
}
DEFAULT_VERSION = "a901837"

AUTHORS_PRESETS: dict = json.loads((Path(__file__).parent / "assets" / "authors_presets.json").read_text())

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]


def _mixing_options(mixing: str, version: str) -> dict:
    if version not in AUTHORS_VERSIONS:
        raise CheckpointError(f"unknown authors' code version {version!r}; choose one of {sorted(AUTHORS_VERSIONS)}")
    return dict(AUTHORS_VERSIONS[version]) if mixing == "cayley" else {}


def _build(input_shape, entries, version: str = DEFAULT_VERSION, attribute_names=None) -> SPNN:
    blocks, shape = [], tuple(input_shape)
    for e in entries:
        if e["type"] == "unshuffle":
            blocks.append(PixelUnshuffle(shape, e["factor"]))
        else:
            if shape[0] != e["in_ch"]:
                raise CheckpointError(f"layout mismatch: block expects {e['in_ch']} channels, gets {shape[0]}")
            mixing = e.get("mixing", "cayley")
            blocks.append(SurjectiveCoupling(shape, e["out_ch"], mixing=mixing,
                                             mixing_options=_mixing_options(mixing, version), s_spec=e["s"],
                                             t_spec=e["t"], r_spec=e["r"], scale_bound=e["scale_bound"]))
        shape = blocks[-1].out_shape
    output = (shape[0],) if shape[1:] == (1, 1) else shape
    names = attribute_names if attribute_names and len(attribute_names) == torch.Size(output).numel() else None
    return SPNN(blocks, output_shape=output, attribute_names=names)


def authors_preset(name: str, mixing: str = "cayley", version: str = DEFAULT_VERSION) -> SPNN:
    """Their hard-coded layouts: ``celeba32``, ``celeba64``, ``celeba256`` (40 CelebA attributes)."""
    if name not in AUTHORS_PRESETS:
        raise CheckpointError(f"unknown preset {name!r}; choose one of {sorted(AUTHORS_PRESETS)}")
    p = AUTHORS_PRESETS[name]
    entries = [{**b, "mixing": mixing} if b["type"] == "coupling" else b for b in p["blocks"]]
    return _build(p["input_shape"], entries, version, CELEBA_ATTRIBUTES)


def _generic_spec(c_in: int, c_out: int, hidden: int, feat_size: int | None) -> list:
    """Their default ConvMLP: widths h1 = min(max(hidden, c_in), 1024), h2 = min(2 h1, 2048)."""
    h1 = min(max(hidden, c_in), 1024)
    h2 = min(h1 * 2, 2048)
    if feat_size is not None and feat_size > 1:
        if feat_size % 2:
            raise CheckpointError(f"feat_size {feat_size}: their generic sub-network needs an even feature size")
        return [["conv", c_in, h1, 3, 1, 1], ["relu"], ["conv", h1, h1, 3, 1, 1], ["relu"],
                ["conv", h1, h2, 3, 2, 1], ["relu"], ["conv", h2, h2, 3, 1, 1], ["relu"],
                ["convT", h2, h1, 4, 2, 1], ["relu"], ["conv", h1, c_out, 3, 1, 1]]
    if feat_size == 1:
        return [["conv", c_in, h1, 1, 1, 0], ["relu"], ["conv", h1, h2, 1, 1, 0], ["relu"],
                ["conv", h2, h1, 1, 1, 0], ["relu"], ["conv", h1, c_out, 1, 1, 0]]
    return [["conv", c_in, h1, 3, 1, 1], ["relu"], ["conv", h1, h2, 3, 1, 1], ["relu"],
            ["conv", h2, h2, 3, 1, 1], ["relu"], ["conv", h2, h1, 3, 1, 1], ["relu"], ["conv", h1, c_out, 3, 1, 1]]


def _handwritten() -> tuple[dict, dict]:
    """Their hand-written sub-networks, keyed by (c_in, c_out): those of the 256 layout, and the others."""
    at256, other = {}, {}
    for name, preset in AUTHORS_PRESETS.items():
        table = at256 if name == "celeba256" else other
        for b in preset["blocks"]:
            if b["type"] == "coupling":
                d = b["in_ch"] - b["out_ch"]
                table[(d, b["out_ch"])] = b["s"]
                table[(b["out_ch"], d)] = b["r"]
    return at256, other


_AT256, _OTHER = _handwritten()


def _retarget(spec: list, c_in: int, c_out: int) -> list:
    """A spec with its first layer's input and last layer's output channels replaced."""
    spec = [list(layer) for layer in spec]
    spec[0][1], spec[-1][2] = c_in, c_out
    return spec


def authors_subnet(c_in: int, c_out: int, hidden: int = 64, img_size: int | None = 32,
                   feat_size: int | None = None) -> list:
    """The sub-network their ConvMLP builds for (c_in, c_out), as a spec: the 256-layout nets when the
    block's img_size is 256; the 64/32-layout nets for (3, 3), (6, 6), (16, 32), (32, 16), (1024, 1024);
    their final-block nets whenever c_in + c_out = 1024; their generic net otherwise (the order of their
    checks)."""
    if img_size == 256 and (c_in, c_out) in _AT256:
        return _AT256[(c_in, c_out)]
    if (c_in, c_out) in _OTHER and c_in + c_out != 1024:
        return _OTHER[(c_in, c_out)]
    if c_in + c_out == 1024:
        final = AUTHORS_PRESETS["celeba32"]["blocks"][-1]
        return _retarget(final["s"] if c_in >= c_out else final["r"], c_in, c_out)
    return _generic_spec(c_in, c_out, hidden, feat_size)


def authors_custom(layout: list, img_ch: int, img_size: int, version: str = DEFAULT_VERSION) -> SPNN:
    """Their custom-layout mode (``layer_channels``), block by block (module docstring)."""
    entries = []
    for item in layout:
        try:
            kind, kw = item
        except (TypeError, ValueError):
            raise CheckpointError(f"layout entry {item!r}: expected [block type, {{options}}]") from None
        if kind == "PixelUnshuffleBlock":
            entries.append({"type": "unshuffle", "factor": kw["r"]})
        elif kind == "ConvPINNBlock":
            cin, cout = kw["in_ch"], kw["out_ch"]
            hidden, fs, size = kw.get("hidden", 64), kw.get("feat_size"), kw.get("img_size", 32)
            d = cin - cout
            st = authors_subnet(d, cout, hidden, size, fs)
            entries.append({"type": "coupling", "in_ch": cin, "out_ch": cout,
                            "scale_bound": kw.get("scale_bound", 2.0), "mixing": kw.get("mix_type", "cayley"),
                            "s": st, "t": st, "r": authors_subnet(cout, d, hidden, size, fs)})
        else:
            raise CheckpointError(f"unknown block {kind!r} in the authors' layout")
    return _build((img_ch, img_size, img_size), entries, version, CELEBA_ATTRIBUTES)


def convert_authors_state(state: dict) -> dict:
    """Rename their keys to ours."""
    out = {}
    for k, v in state.items():
        if not k.startswith("pinn.blocks."):
            raise CheckpointError(f"unexpected key {k!r}: not an authors' SPNN state dict (pinn.blocks.*)")
        k = k[len("pinn."):].replace(".mix.A_unconstrained", ".mix.weight").replace(".mix.V", ".mix.weight")
        out[k] = v
    return out


def detect_preset(state: dict) -> tuple[str, str]:
    """(preset, mixing) from tensor shapes."""
    mixing = "householder" if any(k.endswith(".mix.V") for k in state) else "cayley"
    sizes = {}
    for k, v in state.items():
        if k.endswith((".mix.A_unconstrained", ".mix.V")):
            sizes[int(k.split(".")[2])] = v.shape[-1]
    for name, p in AUTHORS_PRESETS.items():
        want = {i: b["in_ch"] for i, b in enumerate(p["blocks"]) if b["type"] == "coupling"}
        if want == sizes:
            return name, mixing
    raise CheckpointError(f"the mixing sizes {sizes} match none of the presets {sorted(AUTHORS_PRESETS)}; "
                          "pass the layout (their custom-layout list) explicitly")


def _read(path: Path) -> tuple[dict, dict]:
    if path.suffix == ".safetensors":
        return read_tensors(path), read_metadata(path)
    state = safe_torch_load(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict")
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}, {}


def load_authors_spnn(path: str | os.PathLike, preset: str | None = None, layout: list | None = None,
                      img_ch: int = 3, img_size: int | None = None, version: str = DEFAULT_VERSION,
                      dtype: torch.dtype | None = None) -> SPNN:
    """An `SPNN` with the weights of an authors' checkpoint (.pth state dict, or safetensors).

    ``version``: their code version whose Cayley arithmetic to reproduce (`AUTHORS_VERSIONS`). ``dtype``: the
    network's dtype (default: the state dict's, so float64 weights stay float64)."""
    state, meta = _read(Path(path))
    if not any(k.startswith("pinn.blocks.") for k in state):
        hint = ("it is already an spnn network: load it with spnn.SPNN.load or pass it as --spnn"
                if "spnn_config" in meta else "give a state dict of their SPNN class")
        raise CheckpointError(f"{path}: not an authors' SPNN checkpoint (no pinn.blocks.* keys); {hint}")
    if layout is None and "layout" in meta:
        layout = meta["layout"]
        img_ch, img_size = int(meta.get("img_ch", img_ch)), int(meta.get("img_size", img_size or 0))
    try:
        with torch.device("meta"):
            skeleton = _network(state, preset, layout, img_ch, img_size, version)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: invalid authors' layout ({type(e).__name__}: {e})") from None
    converted = convert_authors_state(state)
    load_state_checked(skeleton, converted, str(path), check_only=True)
    net = _network(state, preset, layout, img_ch, img_size, version)
    if dtype is None:
        dtypes = {v.dtype for v in converted.values() if v.is_floating_point()}
        dtype = dtypes.pop() if len(dtypes) == 1 else torch.float32
    net = net.to(dtype)
    load_state_checked(net, converted, str(path))
    return net


def _network(state, preset, layout, img_ch, img_size, version) -> SPNN:
    if layout is not None:
        if not img_size:
            raise CheckpointError("a custom layout needs img_size")
        return authors_custom(layout, img_ch, img_size, version)
    name, mixing = (preset, "householder" if any(k.endswith(".mix.V") for k in state) else "cayley") \
        if preset else detect_preset(state)
    return authors_preset(name, mixing, version)

"""Load the authors' SPNN checkpoints (github yamitehr/SPNN) into `spnn.SPNN`.

Their state dicts use ``pinn.blocks.{i}.{mix,s,t,r}...`` keys; ours drop ``pinn.`` and call the mixing
parameter ``weight`` (their Cayley ``A_unconstrained``, Householder ``V``). Layouts come from:

- a named preset (``celeba32``, ``celeba64``, ``celeba256`` with 40 attributes; ``celeba256`` is the
  layout of the released ``spnn_celebahq_256.pth``), detected from tensor shapes when not given;
- their custom-layout mode: a list ``[["PixelUnshuffleBlock", {"r": 4}], ["ConvPINNBlock", {...}], ...]``
  (stored as ``layout`` in a safetensors file's metadata, or passed in).

Numerical differences: their Cayley solve adds 1e-6 I and inverts with W^T; ours is exact, so outputs
agree to ~1e-6 relative, not bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spnn.blocks import PixelUnshuffle, SurjectiveCoupling
from spnn.errors import CheckpointError
from spnn.io import read_metadata, read_tensors, safe_torch_load
from spnn.network import SPNN, load_state_checked

__all__ = ["AUTHORS_PRESETS", "authors_preset", "authors_custom", "convert_authors_state", "load_authors_spnn",
           "detect_preset", "CELEBA_ATTRIBUTES"]

AUTHORS_PRESETS: dict = json.loads((Path(__file__).parent / "assets" / "authors_presets.json").read_text())

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]


def _build(input_shape, entries, mixing: str, attribute_names=None) -> SPNN:
    blocks, shape = [], tuple(input_shape)
    for e in entries:
        if e["type"] == "unshuffle":
            blocks.append(PixelUnshuffle(shape, e["factor"]))
        else:
            if shape[0] != e["in_ch"]:
                raise CheckpointError(f"layout mismatch: block expects {e['in_ch']} channels, gets {shape[0]}")
            blocks.append(SurjectiveCoupling(shape, e["out_ch"], mixing=mixing, s_spec=e["s"], t_spec=e["t"],
                                             r_spec=e["r"], scale_bound=e["scale_bound"]))
        shape = blocks[-1].out_shape
    k = shape[0] * shape[1] * shape[2]
    return SPNN(blocks, output_shape=(k,), attribute_names=attribute_names)


def authors_preset(name: str, mixing: str = "cayley") -> SPNN:
    """Their hard-coded layouts: ``celeba32``, ``celeba64``, ``celeba256`` (40 CelebA attributes)."""
    if name not in AUTHORS_PRESETS:
        raise CheckpointError(f"unknown preset {name!r}; choose one of {sorted(AUTHORS_PRESETS)}")
    p = AUTHORS_PRESETS[name]
    return _build(p["input_shape"], p["blocks"], mixing, CELEBA_ATTRIBUTES)


def _generic_spec(c_in: int, c_out: int, hidden: int, feat_size: int | None) -> list:
    """Their default ConvMLP: widths h1 = min(max(hidden, c_in), 1024), h2 = min(2 h1, 2048)."""
    h1 = min(max(hidden, c_in), 1024)
    h2 = min(h1 * 2, 2048)
    if feat_size is not None and feat_size > 1:
        return [["conv", c_in, h1, 3, 1, 1], ["relu"], ["conv", h1, h1, 3, 1, 1], ["relu"],
                ["conv", h1, h2, 3, 2, 1], ["relu"], ["conv", h2, h2, 3, 1, 1], ["relu"],
                ["convT", h2, h1, 4, 2, 1], ["relu"], ["conv", h1, c_out, 3, 1, 1]]
    if feat_size == 1:
        return [["conv", c_in, h1, 1, 1, 0], ["relu"], ["conv", h1, h2, 1, 1, 0], ["relu"],
                ["conv", h2, h1, 1, 1, 0], ["relu"], ["conv", h1, c_out, 1, 1, 0]]
    return [["conv", c_in, h1, 3, 1, 1], ["relu"], ["conv", h1, h2, 3, 1, 1], ["relu"],
            ["conv", h2, h2, 3, 1, 1], ["relu"], ["conv", h2, h1, 3, 1, 1], ["relu"], ["conv", h1, c_out, 3, 1, 1]]


def authors_custom(layout: list, img_ch: int, img_size: int) -> tuple[SPNN, str]:
    """Their custom-layout mode (``layer_channels``) with their generic sub-nets; returns (net, mixing)."""
    entries, mixing = [], "cayley"
    for kind, kw in layout:
        if kind == "PixelUnshuffleBlock":
            entries.append({"type": "unshuffle", "factor": kw["r"]})
        elif kind == "ConvPINNBlock":
            mixing = kw.get("mix_type", "cayley")
            cin, cout, hidden, fs = kw["in_ch"], kw["out_ch"], kw.get("hidden", 64), kw.get("feat_size")
            entries.append({"type": "coupling", "in_ch": cin, "out_ch": cout, "scale_bound": kw.get("scale_bound", 2.0),
                            "s": _generic_spec(cin - cout, cout, hidden, fs),
                            "t": _generic_spec(cin - cout, cout, hidden, fs),
                            "r": _generic_spec(cout, cin - cout, hidden, fs)})
        else:
            raise CheckpointError(f"unknown block {kind!r} in the authors' layout")
    return _build((img_ch, img_size, img_size), entries, mixing), mixing


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
                      img_ch: int = 3, img_size: int | None = None) -> SPNN:
    """An `SPNN` with the weights of an authors' checkpoint (.pth state dict, or safetensors)."""
    state, meta = _read(Path(path))
    if layout is None and "layout" in meta:
        layout = meta["layout"]
        img_ch, img_size = int(meta.get("img_ch", img_ch)), int(meta.get("img_size", img_size or 0))
    if layout is not None:
        if not img_size:
            raise CheckpointError("a custom layout needs img_size")
        net, _ = authors_custom(layout, img_ch, img_size)
    else:
        name, mixing = (preset, "householder" if any(k.endswith(".mix.V") for k in state) else "cayley") \
            if preset else detect_preset(state)
        net = authors_preset(name, mixing)
    load_state_checked(net, convert_authors_state(state), str(path))
    return net

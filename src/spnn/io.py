"""Atomic file writes and safetensors files carrying a JSON description."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from spnn.errors import CheckpointError

__all__ = ["atomic_write", "write_json", "save_tensors", "load_tensors", "read_metadata", "read_header",
           "save_state", "load_state", "check_header", "read_tensors", "require_file", "safe_torch_load"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, obj, indent: int = 1) -> Path:
    """Write ``obj`` as JSON atomically."""
    text = json.dumps(obj, indent=indent)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write tensors (contiguous, CPU) and a JSON-serialisable ``meta`` dict atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {k: json.dumps(v) for k, v in meta.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a safetensors file, decoded."""
    from safetensors import safe_open

    path = require_file(path)
    try:
        with safe_open(str(path), "pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); is it truncated?") from e
    out = {}
    for k, v in raw.items():  # other writers (diffusers: {"format": "pt"}) store plain strings
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def require_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it is a file; else `CheckpointError` saying what is there instead."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a weights file; give the weights file in it")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; check the path")
    return path


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(tensors, metadata) of a file written by `save_tensors`."""
    meta = read_metadata(path)
    return read_tensors(path, device), meta


def read_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of any safetensors file (its metadata is not read)."""
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors ({e}); the file may be corrupt") from e


def read_header(path: str | os.PathLike) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (dtype, shape)} of a safetensors file, read from its header alone (no tensor is allocated)."""
    from safetensors import safe_open

    path = require_file(path)
    try:
        with safe_open(str(path), "pt") as f:
            out = {}
            for k in f.keys():  # noqa: SIM118 - safe_open is not a dict
                sl = f.get_slice(k)
                out[k] = (str(sl.get_dtype()), tuple(int(v) for v in sl.get_shape()))
            return out
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); is it truncated?") from e


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def check_header(path: str | os.PathLike, expected: dict[str, torch.Tensor]) -> None:
    """Compare a file's header (names, shapes, dtypes) with the tensors a model expects, before reading any
    tensor: a crafted or mismatched file is refused without allocating what its header asks for.

    ``expected``: e.g. the state dict of the model built on the ``meta`` device. Floating tensors may be
    stored in any floating dtype (they are cast on load)."""
    header = read_header(path)
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    bad = []
    for k, t in expected.items():
        if k not in header:
            continue
        dtype, shape = header[k]
        file_dtype = _DTYPES.get(dtype)
        if shape != tuple(t.shape):
            bad.append(f"{k}: file {shape} vs model {tuple(t.shape)}")
        elif file_dtype is None or file_dtype.is_floating_point != t.dtype.is_floating_point:
            bad.append(f"{k}: file dtype {dtype} vs model {t.dtype}")
    if missing or unexpected or bad:
        def head(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        parts = [f"{what}: {head(items)}" for what, items in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("mismatches", bad)) if items]
        raise CheckpointError(f"{path}: weights do not match the architecture its description names; "
                              + "; ".join(parts) + "; the file is corrupt or was edited, re-save or re-train it")


def _encode(obj, tensors: dict):
    """JSON skeleton of nested dicts / lists / tuples / numbers / strings, tensors moved into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__" if isinstance(obj, tuple) else "__list__": [_encode(v, tensors) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a state file")


def _decode(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [_decode(v, tensors) for v in obj["__list__"]]
        raise ValueError(f"unknown entry {sorted(obj)}")
    return obj


def save_state(path: str | os.PathLike, state: dict) -> Path:
    """Write nested training state (optimizer and scheduler state dicts, numbers, tensors) as safetensors
    plus a JSON skeleton in its metadata, atomically: no pickle, so loading it can run no code.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "s.safetensors"
    >>> _ = save_state(p, {"step": 3, "moments": (torch.ones(2), 0.5)})
    >>> load_state(p)
    {'step': 3, 'moments': (tensor([1., 1.]), 0.5)}
    """
    tensors: dict = {}
    skeleton = _encode(state, tensors)
    return save_tensors(path, tensors, {"state": skeleton})


def load_state(path: str | os.PathLike) -> dict:
    """Read a file written by `save_state`."""
    tensors, meta = load_tensors(path)
    if "state" not in meta:
        raise CheckpointError(f"{path}: not an spnn training-state file (no 'state' entry); delete it to restart")
    try:
        return _decode(meta["state"], tensors)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: malformed training state ({e}); delete it to restart") from None


def safe_torch_load(path: str | os.PathLike) -> object:
    """``torch.load`` with the restricted unpickler only (tensors, containers, numbers): a pickle that would
    run code is refused with a one-line `CheckpointError` naming the file."""
    path = require_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - refused by the safe unpickler, or corrupt
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights only load failed" in first.lower():
            first = "refused by the safe loader: it holds objects other than tensors, so loading it could run code"
        raise CheckpointError(f"{path}: cannot read checkpoint ({first[:200]}); only plain state dicts load") from None

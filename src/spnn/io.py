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

__all__ = ["atomic_write", "write_json", "save_tensors", "load_tensors", "read_metadata"]


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

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), "pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); is it truncated?") from e
    try:
        return {k: json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata is not JSON ({e}); not an spnn file?") from e


def load_tensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(tensors, metadata) of a file written by `save_tensors`."""
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors ({e}); the file may be corrupt") from e
    return tensors, meta

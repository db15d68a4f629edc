"""Optional download of the paper's released files from the Hugging Face hub (never needed offline).

- ``spnn-celebahq``: ``spnn_celebahq_256.pth`` from ``yamitehr/SPNN`` (their SPNN, 256x256, 40 attributes);
- ``prior-celebahq``: ``google/ddpm-ema-celebahq-256`` (the CelebA-HQ DDPM in diffusers format).
"""

from __future__ import annotations

import os
from pathlib import Path

from spnn.errors import CheckpointError

__all__ = ["RELEASES", "download"]

RELEASES = {
    "spnn-celebahq": {"repo_id": "yamitehr/SPNN", "filename": "spnn_celebahq_256.pth"},
    "prior-celebahq": {"repo_id": "google/ddpm-ema-celebahq-256"},
}


def download(name: str, out_dir: str | os.PathLike) -> Path:
    """Fetch a released file or model folder into ``out_dir``; a clear error when offline."""
    if name not in RELEASES:
        raise CheckpointError(f"unknown release {name!r}; choose one of {sorted(RELEASES)}")
    try:
        import huggingface_hub as hub
    except ImportError:
        raise CheckpointError("downloading needs huggingface-hub: pip install 'spnn[hub]'") from None
    spec, out_dir = RELEASES[name], Path(out_dir)
    try:
        if "filename" in spec:
            return Path(hub.hf_hub_download(spec["repo_id"], spec["filename"], local_dir=out_dir))
        return Path(hub.snapshot_download(spec["repo_id"], local_dir=out_dir / name))
    except Exception as e:  # noqa: BLE001 - every hub failure means: not available here
        raise CheckpointError(
            f"could not download {spec['repo_id']} ({type(e).__name__}); this machine may be offline. "
            f"Download it elsewhere and pass the local path (see README: the paper's CelebA-HQ experiments)"
        ) from e

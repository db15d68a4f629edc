"""The shipped offline models (32x32 avatars) and loading by path with those as defaults."""

from __future__ import annotations

from pathlib import Path

from spnn.errors import CheckpointError

__all__ = ["ASSETS", "EVALUATORS", "DEFAULT_JUDGE", "evaluator_path", "load_spnn", "load_prior", "load_evaluator"]

ASSETS = Path(__file__).parent / "assets"
DEFAULT_SPNN = ASSETS / "avatars32-spnn.safetensors"
DEFAULT_PRIOR = ASSETS / "avatars32-prior"
DEFAULT_EVALUATOR = ASSETS / "avatars32-evaluator.safetensors"
# the judges of the built-in faces (docs: training): "r3", the default, five plain CNNs trained alike on labels
# revision 3 (the parts as drawn) from seeds 0-4, their logits averaged (one such CNN's verdicts on edited faces move
# by up to 0.28 with its seed); "r2", one CNN on revision 2 (the default until 2026-12-07, session 26); "r1", the same
# recipe on revision 1 (it misses golden blond); "spatial", a head of another design trained under random colour
# casts (also revision 1)
DEFAULT_JUDGE = "r3"
EVALUATORS = {"r3": DEFAULT_EVALUATOR, "r2": ASSETS / "avatars32-evaluator-r2.safetensors",
              "r1": ASSETS / "avatars32-evaluator-r1.safetensors",
              "spatial": ASSETS / "avatars32-evaluator-spatial.safetensors"}


def _default(path, default: Path, what: str) -> Path:
    if path:
        return Path(path)
    if not default.exists():
        raise CheckpointError(f"no {what} given and the shipped one ({default}) is missing; "
                              f"train one (see README) or pass a path")
    return default


def load_spnn(path=None, device="cpu"):
    """An SPNN from our format, or the authors' state dict (``.pth``, or safetensors with their key names) via
    `spnn.convert` (their code version a901837; `spnn.convert.load_authors_spnn` takes others)."""
    from spnn.network import SPNN

    path = _default(path, DEFAULT_SPNN, "SPNN")
    if path.suffix in (".pth", ".pt") or _is_authors_safetensors(path):
        from spnn.convert import load_authors_spnn

        return load_authors_spnn(path).to(device).eval()
    return SPNN.load(path, device).eval()


def _is_authors_safetensors(path: Path) -> bool:
    """A safetensors file of the authors' key names (pinn.blocks.*) without our network description."""
    from spnn.io import read_header, read_metadata

    if path.suffix != ".safetensors" or not path.is_file() or "spnn_config" in read_metadata(path):
        return False
    return any(k.startswith("pinn.blocks.") for k in read_header(path))


def load_prior(path=None, device="cpu", image_size: int | None = None):
    """A prior folder or DDPM/DDIM-repository checkpoint (``image_size``: its images' size, which such a
    checkpoint does not record; default 256)."""
    from spnn.diffusion.prior import Prior

    return Prior.load(_default(path, DEFAULT_PRIOR, "prior"), device, image_size=image_size).eval()


def evaluator_path(path) -> Path | None:
    """The file of an evaluator given by name (`EVALUATORS`) or path; None for the default. A name that is neither
    is refused here, before any work (the CLI checks its options with it)."""
    if isinstance(path, str) and path in EVALUATORS:
        return EVALUATORS[path]
    if path and not Path(path).exists():
        raise CheckpointError(f"{path}: no such file, nor a shipped evaluator ({', '.join(EVALUATORS)})")
    return Path(path) if path else None


def load_evaluator(path=None, device="cpu"):
    """An evaluator (or ensemble) file, or a shipped one by name: "r3" (the default), "r2", "r1" or "spatial"
    (`EVALUATORS`)."""
    from spnn.evaluation.evaluator import load_evaluator_file

    return load_evaluator_file(_default(evaluator_path(path), DEFAULT_EVALUATOR, "evaluator"), device)

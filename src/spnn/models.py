"""The shipped offline models (32x32 avatars) and loading by path with those as defaults."""

from __future__ import annotations

from pathlib import Path

from spnn.errors import CheckpointError

__all__ = ["ASSETS", "load_spnn", "load_prior", "load_evaluator"]

ASSETS = Path(__file__).parent / "assets"
DEFAULT_SPNN = ASSETS / "avatars32-spnn.safetensors"
DEFAULT_PRIOR = ASSETS / "avatars32-prior"
DEFAULT_EVALUATOR = ASSETS / "avatars32-evaluator.safetensors"


def _default(path, default: Path, what: str) -> Path:
    if path:
        return Path(path)
    if not default.exists():
        raise CheckpointError(f"no {what} given and the shipped one ({default}) is missing; "
                              f"train one (see README) or pass a path")
    return default


def load_spnn(path=None, device="cpu"):
    """An SPNN from our format, or the authors' state dict (``.pth`` / their safetensors) via `spnn.convert`."""
    from spnn.network import SPNN

    path = _default(path, DEFAULT_SPNN, "SPNN")
    if path.suffix in (".pth", ".pt"):
        from spnn.convert import load_authors_spnn

        return load_authors_spnn(path).to(device).eval()
    return SPNN.load(path, device).eval()


def load_prior(path=None, device="cpu"):
    from spnn.diffusion.prior import Prior

    return Prior.load(_default(path, DEFAULT_PRIOR, "prior"), device).eval()


def load_evaluator(path=None, device="cpu"):
    from spnn.evaluation.evaluator import AttributeEvaluator

    return AttributeEvaluator.load(_default(path, DEFAULT_EVALUATOR, "evaluator"), device)

"""Exceptions raised by spnn, each naming the problem and the fix."""

from __future__ import annotations

__all__ = ["SPNNError", "ShapeError", "LayoutError", "CheckpointError", "DataError"]


class SPNNError(Exception):
    """Base class of every error raised on purpose by spnn."""


class ShapeError(SPNNError, ValueError):
    """A tensor does not have the shape (or values) the operation expects."""


class LayoutError(SPNNError, ValueError):
    """No valid network layout exists for the requested input and output shapes."""


class CheckpointError(SPNNError, RuntimeError):
    """A weights file is missing, corrupt, or does not match the architecture."""


class DataError(SPNNError, ValueError):
    """A dataset file is missing or malformed, or an attribute name is unknown."""

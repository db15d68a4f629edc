"""Exceptions raised by spnn, each naming the problem and the fix."""

from __future__ import annotations

__all__ = ["SPNNError", "ConfigError", "ShapeError", "LayoutError", "CheckpointError", "DataError",
           "ResourceError"]


class SPNNError(Exception):
    """Base class of every error raised on purpose by spnn."""


class ConfigError(SPNNError, ValueError):
    """An argument or option has a value outside what the operation accepts."""


class ShapeError(SPNNError, ValueError):
    """A tensor does not have the shape (or values) the operation expects."""


class LayoutError(SPNNError, ValueError):
    """No valid network layout exists for the requested input and output shapes."""


class CheckpointError(SPNNError, RuntimeError):
    """A weights file is missing, corrupt, unsafe, or does not match the architecture."""


class DataError(SPNNError, ValueError):
    """A dataset file is missing or malformed, or an attribute name is unknown."""


class ResourceError(SPNNError, MemoryError):
    """The requested work would need more memory than allowed."""

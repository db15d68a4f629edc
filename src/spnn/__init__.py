"""spnn: surjective pseudo-invertible networks and non-linear back-projection.

Build a network for any input and output shape, complete it to a bijection, invert it exactly,
take its pseudo-inverse, and back-project onto non-linear constraints inside diffusion samplers.
"""

from spnn.blocks import Block, PixelUnshuffle, SurjectiveCoupling
from spnn.diagnostics import penrose_report
from spnn.errors import CheckpointError, DataError, LayoutError, ShapeError, SPNNError
from spnn.mixing import CayleyMixing, HouseholderMixing
from spnn.network import SPNN

__version__ = "0.2.0"

__all__ = [
    "SPNN",
    "Block",
    "PixelUnshuffle",
    "SurjectiveCoupling",
    "CayleyMixing",
    "HouseholderMixing",
    "penrose_report",
    "SPNNError",
    "ShapeError",
    "LayoutError",
    "CheckpointError",
    "DataError",
]

"""Training: a generic resumable, multi-process loop and the two SPNN phases."""

from spnn.training.loop import LoopConfig, TrainLoop
from spnn.training.spnn import SPNNTrainConfig, train_spnn

__all__ = ["LoopConfig", "TrainLoop", "SPNNTrainConfig", "train_spnn"]

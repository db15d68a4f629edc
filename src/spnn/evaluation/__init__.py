"""Evaluation: the independent attribute evaluator and image/consistency metrics."""

from spnn.evaluation.evaluator import AttributeEvaluator, train_evaluator
from spnn.evaluation.metrics import attribute_agreement, consistency_error, psnr

__all__ = ["AttributeEvaluator", "train_evaluator", "attribute_agreement", "consistency_error", "psnr"]

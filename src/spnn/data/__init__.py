"""Datasets: the built-in procedural faces (offline) and loaders for real attribute datasets."""

from spnn.data.avatars import AVATAR_ATTRIBUTES, AvatarFaces, render_avatar
from spnn.data.common import ArrayDataset, split_of

__all__ = ["AVATAR_ATTRIBUTES", "AvatarFaces", "render_avatar", "ArrayDataset", "split_of"]

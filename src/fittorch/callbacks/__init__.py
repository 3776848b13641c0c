"""Callbacks: plain objects with no-op ``on_*`` hooks (see :mod:`fittorch.callbacks.base`)."""

from .base import Callback
from .checkpoint import ModelCheckpoint
from .progress import ProgressBar

__all__ = ["Callback", "ModelCheckpoint", "ProgressBar"]

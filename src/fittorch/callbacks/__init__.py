"""Callbacks: plain objects with no-op ``on_*`` hooks (see :mod:`fittorch.callbacks.base`).

The heavier ones (loggers) import their optional packages only when a fit starts.
"""

from .base import SKIP_BATCH, Callback
from .checkpoint import ModelCheckpoint
from .clipping import GradientClipping
from .early_stopping import EarlyStopping
from .guard import NonFiniteGuard
from .live import LiveView
from .loggers import CSVLogger, MLflowLogger, TensorBoardLogger
from .progress import ProgressBar
from .schedulers import LRScheduler
from .time_limit import TimeLimit

__all__ = ["Callback", "SKIP_BATCH", "ModelCheckpoint", "ProgressBar", "EarlyStopping", "LRScheduler", "GradientClipping", "NonFiniteGuard",
           "TimeLimit", "CSVLogger", "TensorBoardLogger", "MLflowLogger", "LiveView"]

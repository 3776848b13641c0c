"""fittorch: a complete, correct and fast PyTorch training loop.

>>> import fittorch as ft
>>> trainer = ft.Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3)
>>> history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=100, batch_size=32)

Heavy parts (matplotlib, scikit-learn, torchmetrics, pandas) are imported only when used.
"""

from __future__ import annotations

from ._version import __version__
from .callbacks import (Callback, CSVLogger, EarlyStopping, GradientClipping, LRScheduler, MLflowLogger,
                        ModelCheckpoint, NonFiniteGuard, ProgressBar, TensorBoardLogger, TimeLimit)
from .errors import (CheckpointError, ConfigError, DataError, DataTypeError, FittorchError, ModelError,
                     NotFittedError, TrainingError)
from .history import History
from .models import MLP, build_model
from .seeding import seed_everything
from .serialization import load_model as load
from .serialization import save_model as save
from .state import TrainState
from .summary import model_summary
from .trainer import Trainer, fit
from .tuning import tune
from .tuning.pruning import OptunaPruning

# ``ft.doctor(...)``. The package's __init__ imports only the (stdlib-only) report module; the
# checks load on the first call. Bound here, not as a wrapper function: the first import of the
# submodule ``fittorch.doctor`` would replace a wrapper of the same name with the module itself.
from .doctor import doctor  # noqa: E402  (after Trainer: the doctor package refers to it lazily)

__all__ = [
    "__version__", "Trainer", "fit", "History", "TrainState", "Callback", "ProgressBar", "MLP", "build_model",
    "save", "load", "seed_everything", "FittorchError", "ConfigError", "DataError", "DataTypeError",
    "ModelError", "NotFittedError", "CheckpointError", "TrainingError",
    "EarlyStopping", "LRScheduler", "GradientClipping", "NonFiniteGuard", "TimeLimit", "CSVLogger",
    "TensorBoardLogger", "MLflowLogger", "ModelCheckpoint", "model_summary", "doctor", "tune", "OptunaPruning",
]

"""fittorch: a complete, correct and fast PyTorch training loop.

>>> import fittorch as ft
>>> trainer = ft.Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3)
>>> history = trainer.fit((X_train, y_train), val=(X_val, y_val), epochs=100, batch_size=32)

``import fittorch`` is cheap: it imports neither torch nor anything heavy. Each public name
below (``ft.Trainer``, ``ft.MLP``, ...) imports its module on first use (PEP 562), so the
``fittorch`` command can print ``--help`` or list runs without loading torch, and a script
pays for torch when it first touches a name that needs it -- as it would with
``import torch``. ``from fittorch import Trainer`` works as usual. Heavy optional parts
(matplotlib, scikit-learn, torchmetrics, pandas) are imported only when used; the default
metrics need no torchmetrics at all (``fittorch.fast_metrics``).
``tests/test_imports.py`` checks all of this in fresh processes.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (CheckpointError, ConfigError, DataError, DataTypeError, FittorchError, ModelError,
                     NotFittedError, TrainingError)

# ``ft.doctor(...)``. The doctor package's __init__ imports only its (stdlib-only) report module;
# the checks load on the first call. Bound here, not lazily: the first import of the submodule
# ``fittorch.doctor`` would replace a lazily bound function of the same name with the module itself.
from .doctor import doctor

# public name -> (module, attribute); imported on first access by ``__getattr__``
_LAZY = {
    "Trainer": (".trainer", "Trainer"), "fit": (".trainer", "fit"), "History": (".history", "History"),
    "TrainState": (".state", "TrainState"), "MLP": (".models", "MLP"), "build_model": (".models", "build_model"),
    "TabularMLP": (".models", "TabularMLP"),
    "seed_everything": (".seeding", "seed_everything"), "load": (".serialization", "load_model"),
    "save": (".serialization", "save_model"), "model_summary": (".summary", "model_summary"),
    "Step": (".step", "Step"), "Window": (".step", "Window"),
    "tune": (".tuning", "tune"), "OptunaPruning": (".tuning.pruning", "OptunaPruning"),
    **{name: (".callbacks", name) for name in (
        "Callback", "CSVLogger", "EarlyStopping", "GradientClipping", "LiveView", "LRScheduler", "MLflowLogger",
        "ModelCheckpoint", "NonFiniteGuard", "ProgressBar", "TensorBoardLogger", "TimeLimit")},
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .callbacks import (Callback, CSVLogger, EarlyStopping, GradientClipping, LiveView, LRScheduler,
                            MLflowLogger, ModelCheckpoint, NonFiniteGuard, ProgressBar, TensorBoardLogger, TimeLimit)
    from .history import History
    from .models import MLP, TabularMLP, build_model
    from .seeding import seed_everything
    from .serialization import load_model as load
    from .serialization import save_model as save
    from .state import TrainState
    from .step import Step, Window
    from .summary import model_summary
    from .trainer import Trainer, fit
    from .tuning import tune
    from .tuning.pruning import OptunaPruning


def __getattr__(name: str):
    """Import a public name's module on first access; submodules (``ft.callbacks``) likewise."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attr)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later accesses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "__version__", "Trainer", "fit", "Step", "Window", "History", "TrainState", "Callback", "ProgressBar",
    "MLP", "TabularMLP", "build_model",
    "save", "load", "seed_everything", "FittorchError", "ConfigError", "DataError", "DataTypeError",
    "ModelError", "NotFittedError", "CheckpointError", "TrainingError",
    "EarlyStopping", "LRScheduler", "GradientClipping", "NonFiniteGuard", "TimeLimit", "CSVLogger",
    "TensorBoardLogger", "MLflowLogger", "ModelCheckpoint", "model_summary", "doctor", "LiveView", "tune",
    "OptunaPruning",
]

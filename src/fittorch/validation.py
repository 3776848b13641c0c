"""The Trainer's checks of its arguments and of a fit's data sources, before any compute.

Every user mistake is reported as a fittorch exception that names the values seen, what
was expected and the fix. The other checks live next to what they check: data parsing in
:mod:`fittorch.data.checks`, the dry run of the model in :mod:`fittorch.dry_run`, the task
in :mod:`fittorch.task`. The loop itself never validates.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import InMemoryData, StreamData, first_tensor
from .errors import ConfigError, DataError, ModelError
from .task import OutputKind

PRECISIONS = ("fp32", "bf16", "fp16")


def check_model(model) -> None:
    if not isinstance(model, nn.Module):
        hint = " Did you pass the class instead of an instance? Call it: MyModel()." if isinstance(model, type) else ""
        raise ModelError(f"model is a {type(model).__name__}; expected a torch.nn.Module instance.{hint}")
    if not any(p.requires_grad for p in model.parameters()):
        n = sum(p.numel() for p in model.parameters())
        raise ModelError(
            f"model {type(model).__name__} has no trainable parameters ({n} parameters, none with "
            "requires_grad=True). Unfreeze some layers (p.requires_grad_(True)) before training."
        )


def check_trainer_args(*, precision: str, accumulate_steps: int, nonfinite: str) -> None:
    if precision not in PRECISIONS:
        from .errors import unknown_name

        raise unknown_name("precision", precision, PRECISIONS)
    if not isinstance(accumulate_steps, int) or accumulate_steps < 1:
        raise ConfigError(f"accumulate_steps={accumulate_steps!r}; expected an integer >= 1 (1 means no accumulation).")
    if nonfinite not in ("stop", "skip", "ignore"):
        from .errors import unknown_name

        raise unknown_name("nonfinite policy", nonfinite, ("stop", "skip", "ignore"))


def check_val_every_steps(value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"val_every_steps={value!r}; expected an integer >= 0 (0: validate at epoch ends only).")


def check_fit_args(*, epochs, batch_size, n_train: int | None, drop_last: bool) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ConfigError(f"epochs={epochs!r}; expected a non-negative integer.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ConfigError(f"batch_size={batch_size!r}; expected a positive integer such as 32.")
    if n_train is not None and drop_last and batch_size > n_train:
        raise ConfigError(
            f"batch_size={batch_size} is larger than the {n_train} training samples and drop_last=True, "
            "so every batch would be dropped and nothing trained. Use a smaller batch_size or drop_last=False."
        )


def check_source(source, role: str) -> None:
    """Empty sets and non-finite values, on the host, before anything is moved."""
    try:
        n = len(source)
    except TypeError:
        return
    if n == 0:
        raise DataError(f"The {role} data is empty (0 samples). Pass at least one sample; check the filter or split that made it.")
    if isinstance(source, InMemoryData):
        tensors = (list(source.inputs.items()) if isinstance(source.inputs, dict) else
                   [("X" if len(source.inputs) == 1 else f"X[{i}]", t) for i, t in enumerate(source.inputs)]
                   if isinstance(source.inputs, tuple) else
                   [("X", source.inputs)])
        if source.target is not None:
            tensors.append(("y", source.target))
        for name, t in tensors:
            if t.is_floating_point():
                bad = ~torch.isfinite(t)
                count = int(bad.sum())
                if count:
                    where = bad.nonzero()[0].tolist()
                    pos = f"row {where[0]}" + (f", column {_col_name(source, name, where[1])}" if len(where) > 1 else "")
                    raise DataError(
                        f"The {role} {name} has {count} NaN/inf value(s); the first is at {pos}. "
                        "Training on them makes the loss NaN. Drop or impute those values first."
                    )


def check_class_range(source, kind: OutputKind, role: str, classes: list | None = None) -> None:
    """Labels outside [0, C) would device-assert on CUDA; check them on the host first."""
    if isinstance(source, StreamData) and kind.task == "multiclass":
        source.num_classes = kind.num_classes  # checked chunk by chunk as the file is read
    if kind.task != "multiclass" or not isinstance(source, InMemoryData) or source.target is None:
        return
    t = source.target
    if t.numel() == 0 or t.is_floating_point():
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= kind.num_classes:
        bad = int(((t < 0) | (t >= kind.num_classes)).sum())
        if classes is not None and lo >= 0:
            shown = ", ".join(map(repr, classes[:10])) + (", ..." if len(classes) > 10 else "")
            raise DataError(
                f"The {role} labels have {len(classes)} classes ({shown}), but the model outputs "
                f"{kind.num_classes} classes. Make the model's last layer output {len(classes)} values "
                f"(e.g. nn.Linear(hidden, {len(classes)}))."
            )
        raise DataError(
            f"The {role} labels range from {lo} to {hi}, but the model outputs {kind.num_classes} classes "
            f"(valid labels 0..{kind.num_classes - 1}); {bad} label(s) are out of range. Make the last layer "
            f"output {hi + 1} classes, or encode the labels as 0..C-1 (sklearn's LabelEncoder)."
        )


def _col_name(source, tensor_name: str, j: int) -> str:
    names = getattr(source, "feature_names", None)
    if names and tensor_name.startswith("X") and j < len(names):
        return f"{j} ({names[j]!r})"
    return str(j)


# -- predict / evaluate (case 15) -------------------------------------------------------------
def check_features(src, n_features_in: int | None, feature_names: list[str] | None, what: str) -> None:
    """Case 15: the same number (and, for DataFrames, names) of features as in training."""
    names = getattr(src, "feature_names", None)
    if feature_names and names and names != list(feature_names):
        if sorted(names) == sorted(feature_names):
            raise DataError(
                f"{what}: the DataFrame's columns are in a different order than in training "
                f"(got {names[:5]}..., trained on {list(feature_names)[:5]}...). Reorder them: X[trainer.feature_names]."
            )
        extra = [n for n in names if n not in feature_names]
        lost = [n for n in feature_names if n not in names]
        raise DataError(
            f"{what}: the DataFrame's columns differ from training: unknown {extra[:5]}, missing {lost[:5]}. "
            "Pass the same columns as in training (trainer.feature_names)."
        )
    if n_features_in is None or not isinstance(src, InMemoryData):
        return
    x = first_tensor(src.inputs)
    n = int(x.shape[-1]) if x.ndim >= 2 else None
    if n is not None and n != n_features_in:
        raise DataError(
            f"{what}: the data has {n} features, but the model was trained on {n_features_in}. "
            "Pass the same columns, in the same order, as in training."
        )

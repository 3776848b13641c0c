"""The task vocabulary, used everywhere: ``binary``, ``multiclass``, ``multilabel``, ``regression``.

``Trainer(task=...)``, the config's ``task:``, the metrics and the sklearn estimators all use
these four names. When ``task`` is omitted it is inferred once, from the loss and one dry
forward (:func:`infer_kind`):

- ``cross_entropy`` / ``nll``: multiclass (integer class indices, or probability / one-hot
  float targets of the output's shape);
- ``bce`` / ``bce_with_logits``: binary for one output column, multilabel for ``[N, C]``
  targets with ``C > 1``;
- ``mse``, ``l1``, ``smooth_l1``, ``huber``: regression;
- a custom loss: multiclass for integer targets with one more output dimension, else
  regression. Pass ``task=`` to say otherwise.

:class:`OutputKind` is what the model's output means (task, number of classes, logits or
probabilities); metrics and ``predict(labels=True)`` read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError, DataTypeError, ModelError, did_you_mean, unknown_name

if TYPE_CHECKING:  # this module imports no torch: the config, the CLI and ONNX serving use it too
    import torch

TASKS = ("binary", "multiclass", "multilabel", "regression")
CLASSIFICATION = ("binary", "multiclass", "multilabel")
LABEL_TASKS = ("binary", "multiclass")  # one class label per row: encoded, stratified, decoded to names
# the task each built-in loss implies (fittorch.losses builds its table from this one), and its aliases
LOSS_TASKS = {"cross_entropy": "multiclass", "nll": "multiclass", "bce": "binary", "bce_with_logits": "binary",
              "mse": "regression", "l1": "regression", "smooth_l1": "regression", "huber": "regression"}
LOSS_ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "mae": "l1", "binary_cross_entropy": "bce"}
LEGACY = "classification"  # fittorch 0.1/0.2's name for binary and multiclass, still read from old files


class LegacyTaskWarning(FutureWarning):
    """A file names the task ``"classification"`` (fittorch 0.1/0.2); it is read as binary or multiclass."""


@dataclass(frozen=True)
class OutputKind:
    """What the model's output means, derived from the task, the loss and one dry forward."""

    task: str  # one of TASKS
    num_classes: int = 0  # multiclass: classes; multilabel: labels
    logits: bool = True  # binary/multilabel: output is a logit (bce_with_logits) or a probability (bce)


def task_guess(value: str) -> str:
    """" Did you mean ...?" for a mistyped task name; a near-miss of the old "classification" gets the new names."""
    guess = did_you_mean(value, (*TASKS, LEGACY))
    if LEGACY in guess:
        return (" Did you mean 'multiclass' (one label of C per row) or 'binary'? 'classification' is the old name "
                "of both.")
    return guess


def check_task(task) -> None:
    if task is not None and task not in TASKS:
        hint = (" 'classification' is ambiguous here: use 'multiclass' (one label of C per sample), 'binary' "
                "or 'multilabel' (several 0/1 labels per sample).") if task == "classification" else ""
        raise unknown_name("task", task, TASKS, hint.strip())


def is_classification(task: str | None) -> bool:
    """binary, multiclass or multilabel (also the legacy ``"classification"`` of old run files)."""
    return task in CLASSIFICATION or task == LEGACY


def has_class_labels(task: str | None) -> bool:
    """One class label per row (binary, multiclass): labels are encoded, stratified and decoded."""
    return task in LABEL_TASKS or task == LEGACY


def loss_task(loss) -> str | None:
    """The task a loss name implies (binary, multiclass, regression), or None for no or an unknown name."""
    if not isinstance(loss, str):
        return None
    return LOSS_TASKS.get(LOSS_ALIASES.get(loss.lower(), loss.lower()))


def upgrade_task(task: str | None, *, binary: bool) -> str | None:
    """A task read from a file written by fittorch 0.1/0.2: ``"classification"`` -> ``"binary"`` when the
    model has one output per sample (``binary``: bce / bce_with_logits), else ``"multiclass"`` (one output
    per class, as it was trained). Other names pass unchanged."""
    if task == LEGACY:
        return "binary" if binary else "multiclass"
    return task


def default_loss(task: str) -> str:
    """The loss a run uses when its config names none."""
    return {"binary": "bce_with_logits", "multiclass": "cross_entropy", "multilabel": "bce_with_logits"}.get(
        task, "mse")


def task_metrics(task: str) -> list[str]:
    """``metrics="auto"``: what each task reports by default."""
    if task == "multilabel":
        return ["subset_accuracy", "hamming_loss", "f1_micro"]
    return ["accuracy"] if task in LABEL_TASKS else ["r2"]


def task_of_loss(loss_info) -> str | None:
    """The task a named loss implies (binary losses may turn out multilabel), or None."""
    return None if loss_info is None else loss_info.task


def label_task(loss_info, task: str | None = None) -> str | None:
    """``"multiclass"``, ``"binary"`` or None: whether targets are class labels to encode."""
    task = task or task_of_loss(loss_info)
    return task if task in LABEL_TASKS else None


def is_soft_target(target, output=None) -> bool:
    """Float ``[N, C]`` targets (probabilities, one-hot) for a class-index loss such as cross_entropy."""
    if not target.is_floating_point() or target.ndim < 2 or target.shape[-1] < 2:
        return False
    return output is None or tuple(output.shape) == tuple(target.shape)


def _logits(loss_info) -> bool:
    return loss_info is None or loss_info.name != "bce"


def infer_kind(output: torch.Tensor, target, loss_info, task: str | None = None) -> OutputKind:
    """The :class:`OutputKind` of an output tensor, checked against its target (None: unlabelled)."""
    task = task or task_of_loss(loss_info)
    if task == "binary" and target is not None and target.ndim == 2 and target.shape[1] > 1 \
            and task_of_loss(loss_info) == "binary":
        task = "multilabel"  # bce on [N, C] 0/1 targets
    if task is None:
        if target is not None and not target.is_floating_point() and output.ndim == target.ndim + 1:
            task = "multiclass"
        else:
            task = "regression"
    if task == "multiclass":
        if output.ndim < 2 or output.shape[1] < 2:
            raise ModelError(
                f"task 'multiclass' needs outputs [N, num_classes], but the model outputs shape "
                f"{tuple(output.shape)}. End the model with nn.Linear(hidden, num_classes), or pass "
                "task='binary' (one logit per sample) or task='regression'."
            )
        return OutputKind("multiclass", num_classes=int(output.shape[1]))
    if task == "multilabel":
        return OutputKind("multilabel", num_classes=int(output.shape[-1]) if output.ndim > 1 else 1,
                          logits=_logits(loss_info))
    if task == "binary":
        return OutputKind("binary", logits=_logits(loss_info))
    return OutputKind("regression")


def check_output_target(output: torch.Tensor, target, loss_info, task: str | None = None) -> OutputKind:
    """Refuse an output/target pair the loss would mis-train on; return the output's kind."""
    if target is None:
        return infer_kind(output, None, loss_info, task)
    target = target.to(output.device)
    if loss_info is not None and loss_info.target == "class_index":
        if target.is_floating_point():
            if is_soft_target(target, output):
                return OutputKind("multiclass", num_classes=int(output.shape[1]))
            raise DataTypeError(
                f"The loss '{loss_info.name}' expects integer class indices [N], or probabilities / one-hot "
                f"floats of the output's shape {tuple(output.shape)}, but y has dtype {target.dtype} and shape "
                f"{tuple(target.shape)}. Pass integer labels (e.g. y.astype('int64')), soft targets [N, C], "
                "or use 'mse' for regression."
            )
        if output.ndim < 2 or output.ndim != target.ndim + 1:
            raise ModelError(
                f"The model outputs shape {tuple(output.shape)} for a batch whose targets have shape "
                f"{tuple(target.shape)}, but '{loss_info.name}' expects outputs [N, num_classes] for targets [N]. "
                "End the model with nn.Linear(hidden, num_classes)."
            )
        return infer_kind(output, target, loss_info, task or "multiclass")
    if loss_info is not None and loss_info.target == "float":
        if not target.is_floating_point() and loss_info.task == "regression":
            raise DataTypeError(
                f"The loss '{loss_info.name}' is a regression loss, but y holds integers (dtype {target.dtype}), "
                "which look like class labels. For classification use loss='cross_entropy'; for regression "
                "pass float targets (y.astype('float32'))."
            )
        if output.shape != target.shape:
            fix = ""
            if output.numel() == target.numel():
                fix = (f" Reshape y to match (e.g. y.reshape{tuple([-1] + list(output.shape[1:]))}), "
                       "or make the model return the target's shape (e.g. output.squeeze(-1)).")
            raise ModelError(
                f"The model outputs shape {tuple(output.shape)} but the targets have shape {tuple(target.shape)}; "
                f"'{loss_info.name}' needs them equal (torch would broadcast them silently and train on the "
                f"wrong loss).{fix}"
            )
    return infer_kind(output, target, loss_info, task)


def metric_defaults(kind: OutputKind) -> list[str]:
    """``metrics="auto"``: what each task reports by default."""
    return task_metrics(kind.task)


def require_classification(kind: OutputKind | None, what: str) -> None:
    if kind is None or kind.task not in CLASSIFICATION:
        raise ConfigError(
            f"{what} needs a classification task (binary, multiclass or multilabel); this model's task is "
            f"{kind.task if kind else 'unknown'!r}. Call predict(X) for its outputs, or create the Trainer "
            "with task='multiclass' (or 'binary'/'multilabel') if it is a classifier with a custom loss."
        )

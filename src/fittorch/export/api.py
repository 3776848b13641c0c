"""``export_run`` (a run directory) and ``export_trainer`` (a fitted Trainer): trace, write, check.

Both validate the format and the output path before any compute, trace once with
``torch.export`` (dynamic batch), write ``.onnx`` or ``.pt2`` to a temporary file, run that
file on held-out rows against fittorch's predict, and only then move it into place.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataTypeError, unknown_name
from . import parity, sources
from .trace import trace
from .wrap import OUTPUT_NAMES, Contract, NamedInputs, ServingModule, TabularServing, outputs_of
from .writers import publish, temp_path, write_onnx, write_pt2

FORMATS = ("onnx", "pt2")
DEFAULT_TOLERANCE = 1e-4
DEFAULT_ROWS = 1000


@dataclass
class ExportResult:
    path: Path
    format: str
    parity: parity.Parity
    seconds: float
    contract: Contract

    def summary(self) -> str:
        return f"Wrote {self.path} ({self.format}, {self.path.stat().st_size / 1024:.0f} KiB)\n{self.parity.line()}"


def check_format(fmt: str) -> str:
    if not isinstance(fmt, str) or fmt.lower().lstrip(".") not in FORMATS:
        raise unknown_name("export format", str(fmt), FORMATS,
                           "onnx runs on onnxruntime without torch; pt2 is a torch.export ExportedProgram.")
    return fmt.lower().lstrip(".")


def output_path(path: str | os.PathLike | None, fmt: str, default_dir: Path | None) -> Path:
    """Where to write: a file ending in .onnx/.pt2 in an existing, writable folder."""
    if path is None:
        if default_dir is None:
            raise ConfigError("Name the file to write, e.g. trainer.export('model.onnx', format='onnx').")
        return default_dir / f"model.{fmt}"
    p = Path(path)
    if p.is_dir():
        return p / f"model.{fmt}"
    if str(path).endswith(("/", os.sep)):  # meant as a folder
        p = p / f"model.{fmt}"
    if not p.suffix:
        p = p.with_suffix(f".{fmt}")
    if p.suffix.lower() != f".{fmt}":
        raise ConfigError(f"The output {str(p)!r} ends in {p.suffix!r}, but the format is {fmt}; name it "
                          f"{p.with_suffix('.' + fmt).name}, or pass --format {p.suffix.lstrip('.').lower()}.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"The output folder {str(parent)!r} does not exist. Create it first "
                          f"(mkdir -p {parent}), or choose another output path.")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"The output folder {str(parent)!r} is not writable; choose another output path.")
    return p


def export_run(run_dir: str | os.PathLike, *, format: str = "onnx", output=None, checkpoint: str | None = None,
               rows: str | None = None, tolerance: float = DEFAULT_TOLERANCE, max_rows: int = DEFAULT_ROWS,
               trust_code: bool = False) -> ExportResult:
    """Export a run directory's model with its standardization folded in; parity-checked.

    ``trust_code``: a run with ``model.type: import`` imports the code its config names; opt in.
    """
    fmt = check_format(format)
    if checkpoint not in (None, "best", "last"):
        raise unknown_name("checkpoint", str(checkpoint), ("best", "last"))
    final = output_path(output, fmt, Path(run_dir))
    src = sources.load_run_source(str(run_dir), checkpoint=checkpoint, rows=rows, max_rows=max_rows,
                                  trust_code=trust_code)
    prep, trainer = src.prep, src.trainer
    if getattr(trainer, "precision", "fp32") != "fp32":  # the graph is float32: so is the predict it is checked on
        import contextlib

        trainer.step.autocast = contextlib.nullcontext  # this trainer was loaded for the export alone
        src.rows_from += f"; predict in float32, the run trained in {trainer.precision}"
    model = serving_copy(trainer.model)
    head = sources.head_of(prep)
    vocabulary = sources.vocabulary_of(prep)
    kind = TabularServing if vocabulary else ServingModule
    module = kind(model, head=head, fold=src.fold, target_mean=prep.target_mean, target_scale=prep.target_scale,
                  output_key=getattr(trainer, "output_key", None))
    contract = make_contract(prep.task, ["numeric", "categorical"] if vocabulary else ["features"], head,
                             src.feature_names, prep.classes, src.fold,
                             f"{Path(run_dir).name}" + (f" (checkpoint {checkpoint})" if checkpoint else ""))
    contract.target, contract.vocabulary = prep.target, vocabulary
    what = f"The model of {run_dir} ({type(model).__name__})"
    if vocabulary:  # the eager model on the split's own inputs; the graph on their raw numeric values
        rows = {"numeric": src.rows, "categorical": src.codes}
        expected = sources.decoded(trainer.predict(src.model_inputs), prep)
    else:
        rows = sources.with_gaps(src.fold, src.rows)
        expected = sources.reference(trainer, prep, rows, src.feature_names)
    result = _export(module, rows, contract, expected, final, fmt, tolerance, src.rows_from, what)
    if vocabulary:
        sources.write_vocabulary(vocabulary, result.path)
    return result


def make_contract(task, input_names, head, feature_names, classes, fold, source) -> Contract:
    return Contract(task=task, input_names=input_names, output_names=OUTPUT_NAMES[head],
                    feature_names=feature_names, classes=classes, standardized_in_graph=fold is not None,
                    mean=fold and fold.mean, scale=fold and fold.scale, fill=fold and fold.fill,
                    indicator=fold and fold.indicator, source=source)


def export_trainer(trainer, path, *, format: str = "onnx", example=None, preprocessing=None,
                   tolerance: float = DEFAULT_TOLERANCE) -> ExportResult:
    """``trainer.export(...)``: export a fitted Trainer's model, checked on ``example``'s rows."""
    fmt = check_format(format)
    final = output_path(path, fmt, None)
    trainer._check_fitted("export")
    model = serving_copy(trainer.model)
    kind = trainer.output_kind
    logits = bool(getattr(kind, "logits", True))
    head = {"multiclass": "softmax", "binary": "sigmoid" if logits else "probability",
            "multilabel": "multilabel" if logits else "raw"}.get(getattr(kind, "task", "regression"), "raw")
    task = getattr(kind, "task", "regression")  # fittorch.task's name, as a run's export writes it
    what = f"The trainer's model ({type(model).__name__})"
    fold, feature_names = sources.fold_of(preprocessing) if preprocessing is not None else (None, None)
    if isinstance(example, dict):
        if preprocessing is not None:
            raise ConfigError("preprocessing= folds a standardization into one feature matrix; a model with "
                              "named inputs gets its inputs as they are. Leave out preprocessing.")
        inputs = named_example(example)
        names = list(inputs)
        module = NamedInputs(model, names, head=head, as_kwargs=bool(trainer.step.kwargs_input),
                             output_key=trainer.output_key)
        eager = trainer.predict({k: torch.from_numpy(v) for k, v in inputs.items()})
    else:
        inputs = matrix_example(example, trainer)
        module = ServingModule(model, head=head, fold=fold, output_key=trainer.output_key)
        names = ["features"]
        if preprocessing is not None:
            import pandas as pd

            eager = trainer.predict(preprocessing.frame_to_X(pd.DataFrame(inputs, columns=feature_names), "example"))
        else:
            eager = trainer.predict(inputs)
    expected = dict(zip(OUTPUT_NAMES[head], (t.numpy() for t in outputs_of(eager.float(), head, None, None))))
    contract = make_contract(task, names, head, feature_names or trainer.feature_names, trainer.classes,
                             fold, f"Trainer({type(model).__name__})")
    return _export(module, inputs, contract, expected, final, fmt, tolerance, "the example rows", what)


def serving_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module (out of DDP / compile wrappers), copied to the CPU in eval mode; the trainer's stays."""
    import copy

    from ..serialization import unwrap

    return copy.deepcopy(unwrap(model)).cpu().eval()


def matrix_example(example, trainer) -> np.ndarray:
    if example is None:
        n = trainer.n_features_in
        if n is None:
            raise ConfigError("Pass example=X: a few input rows (an array or tensor) to trace the model and check "
                              "the exported file against predict.")
        return np.random.default_rng(0).standard_normal((64, n)).astype(np.float32)
    if isinstance(example, torch.Tensor):
        example = example.detach().cpu().numpy()
    if isinstance(example, (tuple, list)) and example and not np.isscalar(example[0]):
        raise DataTypeError("example= is a tuple of inputs; pass a dict {name: array} so that each input gets a "
                            "name in the exported graph, or a single array.")
    try:
        arr = np.asarray(example, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataTypeError(f"example= must be numeric rows (an array or tensor); got {type(example).__name__} "
                            f"({exc}).") from None
    if arr.ndim < 2 or len(arr) < 1:
        raise DataTypeError(f"example= has shape {arr.shape}; expected rows first, e.g. (n_rows, n_features).")
    return arr


def named_example(example: dict) -> dict[str, np.ndarray]:
    """A dict batch: every value a tensor/array with the same number of rows; names become input names."""
    out = {}
    for key, value in example.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise DataTypeError(f"example= has the key {key!r}; input names must be identifiers (letters, digits, _).")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.dtype == object or value.ndim < 1:
            raise DataTypeError(
                f"example[{key!r}] is a {type(value).__name__}; only a flat dict of arrays/tensors (one per named "
                "input, rows first) can be exported. Nested dicts, lists and Python values cannot be graph "
                "inputs: flatten them into tensors, or wrap the model in a module taking tensors.")
        out[key] = value.astype(np.float32) if value.dtype.kind == "f" else value
    lengths = {k: len(v) for k, v in out.items()}
    if not out or len(set(lengths.values())) != 1:
        raise DataTypeError(f"example= inputs must all have the same number of rows; got {lengths}.")
    return out


def _export(module, inputs, contract: Contract, expected, final: Path, fmt: str, tolerance: float, rows_from: str,
            what: str) -> ExportResult:
    started = time.perf_counter()
    rows = len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)
    traced_rows = (lambda a: np.concatenate([a, a]) if len(a) == 1 else a)  # one row would freeze the batch size
    if isinstance(inputs, dict):
        program = trace(module, tuple(torch.from_numpy(traced_rows(v)) for v in inputs.values()), what,
                        varargs=isinstance(module, NamedInputs))
    else:
        program = trace(module, (torch.from_numpy(traced_rows(inputs)),), what)
    tmp = temp_path(final)
    try:
        if fmt == "onnx":
            write_onnx(program, tmp, contract, what)
        else:
            write_pt2(program, tmp, contract)
        got = parity.run_exported(tmp, fmt, inputs, contract.output_names)
        result = parity.check(got, expected, tolerance=tolerance, rows=rows, rows_from=rows_from, fmt=fmt)
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(final, fmt, result, time.perf_counter() - started, contract)

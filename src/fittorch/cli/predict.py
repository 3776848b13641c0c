"""``fittorch predict RUN_DIR DATA``: predictions with the original label names, as CSV."""

from __future__ import annotations

from ._args import add_trust_code, positive_int

EXAMPLE = """\
example:
  fittorch predict runs/iris-csv new_flowers.csv --output preds.csv
  fittorch predict runs/iris-csv new_flowers.csv --proba          # CSV on stdout, + proba_<class> columns
  fittorch predict runs/iris-csv/model.onnx new_flowers.csv       # an exported file, on onnxruntime (no torch)
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("predict", help="predict a data file with a trained run (CSV out)",
                       description="Apply the run's saved preprocessing to DATA and write one prediction per row, "
                                   "in the original label names (or target units). DATA holds raw rows like the "
                                   "training file (text categories, empty cells); a category never seen in "
                                   "training is read as 'unknown' and counted on stderr. Columns the model does "
                                   "not use are ignored; a missing used column is an error.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a .onnx file from fittorch export")
    p.add_argument("data", metavar="DATA", help="a .csv/.parquet/.npz file, or a sklearn: source")
    p.add_argument("--output", "-o", metavar="PREDS.csv", help="write here (default: standard output)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--batch-size", type=positive_int, default=1024)
    p.add_argument("--strict", action="store_true",
                   help="exit 1 (writing nothing) when a prediction is NaN or inf, instead of a warning")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.run_dir.lower().endswith(".pt2"):
        from ..errors import ConfigError

        raise ConfigError(f"{args.run_dir} is a torch.export program; fittorch predict takes a run directory or an "
                          ".onnx file. Load a .pt2 file with torch.export.load (see docs/export.md), or predict "
                          "with the run it came from.")
    out = predict_onnx(args) if args.run_dir.lower().endswith(".onnx") else predict_run(args)
    write(out, args.output)
    return 0


def predict_run(args):
    """``{column name: values}`` of the predictions (no pandas: see ``write``)."""
    import sys

    import torch

    from ._data import feature_data, note_unknown
    from ..errors import ConfigError, TrainingError
    from ..runs import check_run_dir, load_run

    run_dir = check_run_dir(args.run_dir)
    cfg, prep, trainer = load_run(run_dir, trust_code=args.trust_code)
    if args.proba and prep.task == "regression":
        raise ConfigError("--proba is for classification runs (binary, multiclass, multilabel); this run is a "
                          "regression.")
    X = feature_data(cfg, prep, args.data)
    note_unknown(prep)
    outputs = trainer.predict(X, batch_size=args.batch_size)
    bad = ~torch.isfinite(outputs.reshape(len(outputs), -1)).all(dim=1)
    n_bad = int(bad.sum())
    if n_bad:  # never shown as a label: argmax of NaN would name the first class
        rows = ", ".join(str(i + 1) for i in bad.nonzero().flatten()[:10].tolist())
        msg = (f"{n_bad} of {len(outputs)} predictions are NaN or inf (data rows {rows}{' ...' if n_bad > 10 else ''}) "
               f"although the inputs are finite: the model in {run_dir} is broken (diverged weights?).")
        if args.strict:
            raise TrainingError(msg + " Nothing was written (--strict).")
        print(f"fittorch: warning: {msg} Those rows are left empty.", file=sys.stderr)
    predictions, proba = prep.decode(outputs)
    if prep.task == "multilabel":  # one 0/1 column per label, as predict on the exported .onnx writes them
        import pandas as pd

        return _per_label(pd, predictions, proba, prep.classes, bad, args.proba)
    out = {"prediction": [None if b else p for p, b in zip(predictions, bad.tolist())]}
    if args.proba:
        for i, name in enumerate(prep.classes):
            out[f"proba_{name}"] = proba[:, i].tolist()
    return out


def _per_label(pd, predictions, proba, labels, bad, with_proba: bool):
    out = pd.DataFrame(predictions, columns=[f"prediction_{n}" for n in labels]).astype("Int64")
    out.loc[bad.numpy(), :] = pd.NA  # never shown as a label
    for i, name in enumerate(labels if with_proba else ()):
        out[f"proba_{name}"] = proba[:, i]
    return out


def predict_onnx(args):
    """An exported file on onnxruntime: this path imports neither torch nor the run's model."""
    from ..errors import ConfigError
    from ..serving import OnnxModel, read_table

    model = OnnxModel(args.run_dir)
    if args.proba and not model.is_classifier:
        raise ConfigError(f"--proba is for classification models; this one is a {model.task}.")
    if args.data.startswith("sklearn:"):
        raise ConfigError("Predicting with an .onnx file reads a .csv or .parquet file; sklearn: sources need the "
                          "run directory (fittorch predict RUN_DIR sklearn:...).")
    return model.predict_frame(read_table(args.data), args.data, proba=args.proba)


def write(out, output) -> None:
    """Predictions as CSV: a DataFrame (``.onnx`` path) with ``to_csv``, a ``{column: values}``
    dict with :func:`write_columns`, which writes the same bytes without importing pandas."""
    import sys

    from ..safeio import atomic_writer

    def put(f):
        if isinstance(out, dict):
            write_columns(out, f)
        else:
            out.to_csv(f, index=False)

    n = len(next(iter(out.values()))) if isinstance(out, dict) else len(out)
    if output:  # atomic: a kill or a full disk leaves the previous file whole
        with atomic_writer(output, text=True, newline="") as f:
            put(f)
        print(f"Wrote {n} predictions to {output}", file=sys.stderr)
    else:
        try:
            put(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:  # `fittorch predict ... | head`: the reader has all it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def write_columns(columns: dict, f) -> None:
    """``pandas.DataFrame(columns).to_csv(f, index=False)`` for columns of labels, numbers and None
    (rows left empty), byte for byte (tests/test_tabular_smallcsv.py), without importing pandas (0.2-0.4 s)."""
    import csv

    writer = csv.writer(f, lineterminator="\n")  # as to_csv: QUOTE_MINIMAL, '"' doubled, None -> ''
    writer.writerow(list(columns))
    floats = [_float_column(values) for values in columns.values()]
    for row in zip(*columns.values()):
        writer.writerow([_cell(v, as_float) for v, as_float in zip(row, floats)])


def _float_column(values) -> bool:
    """pandas makes a float64 column of numbers that mix ints and floats: 1 is written 1.0 there."""
    numbers = [v for v in values if v is not None]
    return all(type(v) in (int, float) for v in numbers) and any(type(v) is float for v in numbers)


def _cell(v, as_float: bool):
    if v is None:
        return None
    if as_float or type(v) is float:
        v = float(v)
        return "" if v != v else repr(v)  # NaN is pandas' na_rep ''
    return v

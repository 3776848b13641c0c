"""``fittorch predict RUN_DIR DATA``: predictions with the original label names, as CSV."""

from __future__ import annotations

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
                                   "in the original label names (or target units). A target column in DATA is "
                                   "ignored; any other unknown or missing column is an error.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, or a .onnx file from fittorch export")
    p.add_argument("data", metavar="DATA", help="a .csv/.parquet/.npz file, or a sklearn: source")
    p.add_argument("--output", "-o", metavar="PREDS.csv", help="write here (default: standard output)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--batch-size", type=int, default=1024)
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
    import pandas as pd

    from ._data import feature_data
    from ..errors import ConfigError
    from ..runs import check_run_dir, load_run

    run_dir = check_run_dir(args.run_dir)
    cfg, prep, trainer = load_run(run_dir)
    if args.proba and prep.task != "classification":
        raise ConfigError("--proba is for classification runs; this run is a regression.")
    X = feature_data(cfg, prep, args.data)
    predictions, proba = prep.decode(trainer.predict(X, batch_size=args.batch_size))
    out = pd.DataFrame({"prediction": predictions})
    if args.proba:
        for i, name in enumerate(prep.classes):
            out[f"proba_{name}"] = proba[:, i]
    return out


def predict_onnx(args):
    """An exported file on onnxruntime: this path imports neither torch nor the run's model."""
    from ..errors import ConfigError
    from ..serving import OnnxModel, read_table

    model = OnnxModel(args.run_dir)
    if args.proba and model.task != "classification":
        raise ConfigError("--proba is for classification models; this one is a regression.")
    if args.data.startswith("sklearn:"):
        raise ConfigError("Predicting with an .onnx file reads a .csv or .parquet file; sklearn: sources need the "
                          "run directory (fittorch predict RUN_DIR sklearn:...).")
    return model.predict_frame(read_table(args.data), args.data, proba=args.proba)


def write(out, output) -> None:
    import sys

    if output:
        out.to_csv(output, index=False)
        print(f"Wrote {len(out)} predictions to {output}", file=sys.stderr)
    else:
        try:
            out.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `fittorch predict ... | head`: the reader has all it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

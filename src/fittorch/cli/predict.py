"""``fittorch predict RUN_DIR DATA``: predictions with the original label names, as CSV."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch predict runs/iris-csv new_flowers.csv --output preds.csv
  fittorch predict runs/iris-csv new_flowers.csv --proba          # CSV on stdout, + proba_<class> columns
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
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", metavar="DATA", help="a .csv/.parquet/.npz file, or a sklearn: source")
    p.add_argument("--output", "-o", metavar="PREDS.csv", help="write here (default: standard output)")
    p.add_argument("--proba", action="store_true", help="add one probability column per class")
    p.add_argument("--batch-size", type=int, default=1024)
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    import pandas as pd

    from ._data import feature_data, note_unknown
    from ..errors import ConfigError
    from ..runs import check_run_dir, load_run

    run_dir = check_run_dir(args.run_dir)
    cfg, prep, trainer = load_run(run_dir)
    if args.proba and prep.task != "classification":
        raise ConfigError("--proba is for classification runs; this run is a regression.")
    X = feature_data(cfg, prep, args.data)
    note_unknown(prep)
    predictions, proba = prep.decode(trainer.predict(X, batch_size=args.batch_size))
    out = pd.DataFrame({"prediction": predictions})
    if args.proba:
        for i, name in enumerate(prep.classes):
            out[f"proba_{name}"] = proba[:, i]
    if args.output:
        out.to_csv(args.output, index=False)
        print(f"Wrote {len(out)} predictions to {args.output}", file=sys.stderr)
    else:
        try:
            out.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `fittorch predict ... | head`: the reader has all it wanted
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0

"""``fittorch evaluate RUN_DIR [DATA]``: loss and metrics of a trained run on labelled data."""

from __future__ import annotations

from ._args import add_trust_code, positive_int

EXAMPLE = """\
example:
  fittorch evaluate runs/iris-csv data/iris_test.csv     # a file with the same columns + the target
  fittorch evaluate runs/digits                          # the run's own held-out test (else val) split
  fittorch evaluate runs/digits --checkpoint best --json
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("evaluate", help="loss and metrics of a trained run on labelled data",
                       description="Apply the run's saved preprocessing (columns, scaler, label mapping) to DATA "
                                   "and report loss and metrics. Without DATA: the run's test split (else val).",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("data", metavar="DATA", nargs="?",
                   help="a .csv/.parquet/.npz file with the target column, or a sklearn: source")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="use the best or last checkpoint's weights instead of the final model")
    p.add_argument("--batch-size", type=positive_int, default=1024)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    from ._data import labelled_data, note_unknown
    from ..tabular import n_rows
    from ..runs import check_run_dir, load_run

    run_dir = check_run_dir(args.run_dir)
    cfg, prep, trainer = load_run(run_dir, checkpoint=args.checkpoint, trust_code=args.trust_code)
    what, X, y = labelled_data(cfg, prep, args.data, run_dir)
    result = trainer.evaluate((X, y), batch_size=args.batch_size)
    if args.json:
        unknown = {"unknown_categories": prep.last_unknown} if prep.last_unknown else {}
        print(json.dumps({"data": what, "rows": n_rows(X), **result, **unknown}))
        return 0
    note_unknown(prep)
    print(f"{what}: {n_rows(X)} rows")
    for key, value in result.items():
        print(f"  {key:<10} {value:.4f}" if isinstance(value, float) else f"  {key:<10} {value}")
    if prep.task == "regression" and prep.target_scale is not None:
        print("  (loss, mse and mae are in standardized target units; r2 is unit-free)")
    return 0

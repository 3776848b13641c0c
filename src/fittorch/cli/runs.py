"""``fittorch runs [RUNS_DIR]``: a table of runs to compare."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch runs                  # the runs under ./runs
  fittorch runs /tmp/runs --json
  fittorch runs --compare runs/adam runs/sgd    # one HTML page: curves overlaid, config diff, figures
  fittorch runs --compare adam sgd              # the same: names are looked up under RUNS_DIR

  NAME    STATUS    EPOCHS  BEST                    TEST             TIME  STARTED
  digits  finished  30/30   val_loss 0.0712 @27     accuracy 0.9750  3.1s  2026-01-01T12:00:00Z
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("runs", help="list runs: name, status, epochs, best metrics, time",
                       description="List the run directories under RUNS_DIR with their status, epochs, best "
                                   "monitored value, test metrics and training time.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs_dir", metavar="RUNS_DIR", nargs="?", default="runs", help="default: runs")
    p.add_argument("--json", action="store_true", help="print one JSON object per run")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                   help="write one HTML page comparing these runs: curves overlaid, config keys that differ, "
                        "final and best figures side by side")
    p.add_argument("--output", metavar="PATH", help="where --compare writes its page (default: compare.html "
                                                    "beside the first run)")
    p.set_defaults(run=run)


def run(args) -> int:
    import json

    if args.compare:
        from ..compare import compare_runs

        from pathlib import Path

        # A bare run name is looked up under RUNS_DIR: `fittorch runs --compare adam sgd`.
        dirs = [d if Path(d).is_dir() or not (Path(args.runs_dir) / d).is_dir() else str(Path(args.runs_dir) / d)
                for d in args.compare]
        path = compare_runs(dirs, args.output)
        print(f"Wrote {path}")
        return 0

    from ..runs import format_runs, list_runs

    rows = list_runs(args.runs_dir)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    elif rows:
        print(format_runs(rows))
    else:
        print(f"No runs in {args.runs_dir}. Train one with: fittorch fit CONFIG.yaml --out {args.runs_dir}")
    return 0

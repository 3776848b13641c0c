"""``fittorch runs [RUNS_DIR]``: a table of runs to compare."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch runs                  # the runs under ./runs
  fittorch runs /tmp/runs --json

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
    p.set_defaults(run=run)


def run(args) -> int:
    import json

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

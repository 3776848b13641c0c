"""``fittorch report RUN_DIR``: rebuild the curves (and the HTML report) from a run's files."""

from __future__ import annotations

from ._args import add_trust_code

EXAMPLE = """\
example:
  fittorch report runs/digits        # rewrites runs/digits/curves.png (+ report.html) from metrics.csv
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("report", help="rebuild a run's curves and report from its files",
                       description="Rebuild curves.png, report.html and (for a finished classifier) confusion_matrix.png "
                                   "from RUN_DIR's files: metrics.csv, run.json, config and model. An "
                                   "interrupted or failed run gets a report that says so.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..config import load_config
    from ..history import History
    from ..runs import check_run_dir, read_run_json, write_artifacts

    run_dir = check_run_dir(args.run_dir, need=("config.yaml", "metrics.csv"))
    history = History.from_csv(run_dir / "metrics.csv")
    info = read_run_json(run_dir)
    finished = info.get("status", "finished") in ("finished", "stopped")
    skipped = False  # the confusion matrix, when the validation rows cannot be read
    if finished and (run_dir / "model.safetensors").exists():
        from ..errors import DataError
        from ..runs import load_run
        from ._data import held_out

        cfg, prep, trainer = load_run(run_dir, trust_code=args.trust_code)
        trainer.state.history = history
        val = None
        if cfg.data.val or cfg.data.val_split:  # the validation rows of training, for the confusion matrix
            try:
                _, X, y = held_out(cfg, prep, run_dir, "val")
                val = (X, y)
            except (DataError, FileNotFoundError) as exc:  # the data moved or changed: the rest still draws
                skipped = True
                print(f"note: {exc} The report is drawn without the validation split's confusion matrix.",
                      file=sys.stderr)
        if not write_artifacts(trainer, run_dir, cfg, val=val, labels=prep.classes,
                               total_seconds=info.get("seconds"), run=info or None):
            return 1  # the warning above says what failed; nothing is claimed as written
    else:  # interrupted, failed or died: no final model; the curves and the report from the records
        from ..report import write_run_artifacts
        from ..runs import observed

        cfg = load_config(run_dir / "config.yaml", root=run_dir)
        run = dict(info)
        run["status"], run["epochs"], _ = observed(run_dir, info)
        run.setdefault("best", _best(history, cfg.monitor))
        write_run_artifacts(None, run_dir, config=cfg.to_dict(), name=run_dir.name, run=run, history=history,
                            total_seconds=info.get("seconds"))
    drawn = ("curves.png", "report.html") if skipped else ("curves.png", "confusion_matrix.png", "report.html")
    written = [n for n in drawn if (run_dir / n).exists()]
    print(f"Wrote {', '.join(str(run_dir / n) for n in written)}")
    return 0


def _best(history, monitor: str) -> dict | None:
    row = history.best(monitor) if monitor in history.columns else {}
    return {"monitor": monitor, "value": row.get(monitor), "epoch": row.get("epoch")} if row else None

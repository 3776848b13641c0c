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
                       description="Rebuild curves.png (and report.html, confusion_matrix.png where the report "
                                   "module is installed) from RUN_DIR's metrics.csv, model and config.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..config import load_config
    from ..history import History
    from ..runs import check_run_dir, read_run_json, write_artifacts

    run_dir = check_run_dir(args.run_dir, need=("config.yaml", "metrics.csv"))
    history = History.from_csv(run_dir / "metrics.csv")
    if (run_dir / "model.safetensors").exists():
        from ..runs import load_run

        cfg, _, trainer = load_run(run_dir, trust_code=args.trust_code)
    else:  # an interrupted run: no final model, the curves can still be drawn
        cfg, trainer = load_config(run_dir / "config.yaml", root=run_dir), None
    if trainer is None:
        history.plot(run_dir / "curves.png", title=run_dir.name,
                     best=cfg.monitor if cfg.monitor in history.columns else None)
    else:
        from ..experiment import prepare_data

        info = read_run_json(run_dir)
        trainer.state.history = history
        trainer.state.status = info.get("status", "finished")
        trainer.state.stop_reason = info.get("stop_reason", "")
        prep, splits = prepare_data(cfg)  # the same validation split as in training (same seed)
        if not write_artifacts(trainer, run_dir, cfg, val=splits.val, labels=prep.classes,
                               total_seconds=info.get("seconds")):
            return 1  # the warning above says what failed; nothing is claimed as written
    written = [n for n in ("curves.png", "confusion_matrix.png", "report.html") if (run_dir / n).exists()]
    print(f"Wrote {', '.join(str(run_dir / n) for n in written)}")
    return 0

"""``fittorch resume RUN_DIR``: continue an interrupted run from its last checkpoint."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch fit examples/configs/digits.yaml      # Ctrl-C or SIGTERM: exits 75, keeps a checkpoint
  fittorch resume runs/digits                    # rebuilds everything from runs/digits/config.yaml
  fittorch resume runs/digits --epochs 200       # train a finished run longer (200 epochs in total)
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint",
                       description="Continue a run from RUN_DIR/checkpoints. Data, preprocessing, model and "
                                   "trainer are rebuilt from RUN_DIR/config.yaml alone.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--epochs", type=int, help="new total number of epochs (may only grow)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary line")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..config import load_config, save_config
    from ..errors import CheckpointError, ConfigError
    from ..experiment import build_experiment, supports_checkpoints
    from ..runs import check_run_dir, execute, read_run_json, summary_line

    run_dir = check_run_dir(args.run_dir)
    if not supports_checkpoints():
        raise CheckpointError("This fittorch build has no checkpoint support, so runs cannot be resumed.")
    cfg = load_config(run_dir / "config.yaml")
    info = read_run_json(run_dir)
    if args.epochs is not None:
        if args.epochs < cfg.train.epochs:
            raise ConfigError(f"--epochs {args.epochs} is below the run's {cfg.train.epochs} epochs; "
                              "a resume may only train longer.")
        cfg.train.epochs = args.epochs
    if info.get("status") in ("finished", "stopped") and (info.get("epochs") or 0) >= cfg.train.epochs:
        print(f"{run_dir} is already {info['status']} ({info.get('epochs')} epochs). "
              f"To train longer: fittorch resume {run_dir} --epochs N")
        return 0
    ckpt = Path(run_dir) / "checkpoints"
    if not ckpt.is_dir() or not any(ckpt.iterdir()):
        raise CheckpointError(f"{run_dir} has no checkpoint yet (it stopped before the first one was written); "
                              f"start it again with: fittorch fit {run_dir / 'config.yaml'}")
    exp = build_experiment(cfg, Path(run_dir), quiet=args.quiet)
    save_config(cfg, Path(run_dir) / "config.yaml")
    from ..runs import update_run_json

    update_run_json(run_dir, max_epochs=cfg.train.epochs)
    code = execute(exp, Path(run_dir), resume=True, quiet=args.quiet)
    if args.quiet and code == 0:
        print(summary_line(run_dir, read_run_json(run_dir)))
    return code

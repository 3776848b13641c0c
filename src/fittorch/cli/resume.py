"""``fittorch resume RUN_DIR``: continue an interrupted run from its last checkpoint."""

from __future__ import annotations

from ._args import add_trust_code, positive_int

EXAMPLE = """\
example:
  fittorch fit examples/configs/digits.yaml      # Ctrl-C or SIGTERM: exits 75, keeps a checkpoint
  fittorch resume runs/digits                    # rebuilds everything from runs/digits/config.yaml
  fittorch resume runs/digits --epochs 200       # train a finished run longer (200 epochs in total)
  fittorch resume runs/digits --set optimizer.lr=0.0003   # continue with a lower learning rate

Only optimizer.lr, optimizer.weight_decay, train.epochs, train.log_every, train.keep_last and
train.checkpoint_every_steps may change on resume; they are recorded in run.json ("changes").
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint",
                       description="Continue a run from RUN_DIR/checkpoints. Data, preprocessing, model and "
                                   "trainer are rebuilt from RUN_DIR/config.yaml alone.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--epochs", type=positive_int, help="new total number of epochs (may only grow)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change a setting that is safe to change mid-run, e.g. --set optimizer.lr=0.001")
    p.add_argument("--quiet", action="store_true", help="print only the final summary line")
    add_trust_code(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..rundir import RunLock
    from ..runs import check_run_dir

    run_dir = Path(check_run_dir(args.run_dir))
    with RunLock(run_dir):  # one writer per run: a second resume (or a fit) of it is refused
        return _resume(args, run_dir)


def _resume(args, run_dir) -> int:
    import sys
    import warnings

    from .. import splitrecord
    from ..changes import SAFE, ApplyChanges, check_safe, diff
    from ..config import load_config, save_config
    from ..errors import CheckpointError, ConfigError
    from ..experiment import build_experiment
    from ..runs import check_trusted, execute, now, read_run_json, saved_run_config, summary_line, update_run_json

    path = run_dir / "config.yaml"
    file_cfg = load_config(path, root=run_dir)
    check_trusted(file_cfg, run_dir, args.trust_code)
    cfg = load_config(path, [*args.overrides, *([f"train.epochs={args.epochs}"] if args.epochs else [])],
                      root=run_dir)
    check_safe(diff(file_cfg.to_dict(), cfg.to_dict()), what="--set", run_dir=run_dir)
    ckpt = run_dir / "checkpoints"
    if not ckpt.is_dir() or not any(ckpt.iterdir()):
        raise CheckpointError(f"{run_dir} has no checkpoint yet (it stopped before the first one was written); "
                              f"start it again with: fittorch fit {path}")
    saved = saved_run_config(ckpt)
    edited = {}
    if saved is None:
        warnings.warn(f"The newest checkpoint in {ckpt} does not record the config it was trained with, so edits "
                      f"of {path} cannot be checked against it.", stacklevel=1)
        saved = file_cfg.to_dict()
    else:  # config.yaml edited by hand since the checkpoint: an unsafe edit is refused, a safe one applied
        edited = diff(saved, file_cfg.to_dict())
        check_safe(edited, what=f"{path} (edited since the checkpoint)", run_dir=run_dir)
    changes = diff(saved, cfg.to_dict())
    info = read_run_json(run_dir)
    if args.epochs is not None and args.epochs < file_cfg.train.epochs:
        raise ConfigError(f"--epochs {args.epochs} is below the run's {file_cfg.train.epochs} epochs; "
                          "a resume may only train longer.")
    if cfg.train.epochs < (info.get("epochs") or 0):
        raise ConfigError(f"train.epochs {cfg.train.epochs} is below the {info.get('epochs')} epochs the run has "
                          "done; a resume may only train longer.")
    if info.get("status") in ("finished", "stopped") and (info.get("epochs") or 0) >= cfg.train.epochs:
        print(f"{run_dir} is already {info['status']} ({info.get('epochs')} epochs). "
              f"To train longer: fittorch resume {run_dir} --epochs N")
        return 0
    if "optimizer.lr" in changes and cfg.scheduler is not None:
        raise ConfigError(f"optimizer.lr cannot change on resume while scheduler {cfg.scheduler.name!r} sets the "
                          "learning rate from its own state. Start a new run with the new lr instead.")
    record = splitrecord.read(run_dir)
    if record is not None:  # the rows it trained on so far: the same file, split the same way
        splitrecord.check_source(record, cfg.data.source, doing="Resuming",
                                 fix=f"Put the original file back, or start a new run: fittorch fit {path}")
    exp = build_experiment(cfg, run_dir, quiet=args.quiet)
    if record is not None:
        splitrecord.check_same_split(record, exp.splits.rows, cfg.data.source)
    exp.trainer.run_config = cfg.to_dict()
    if changes:
        for key, (old, new) in changes.items():
            how = " (edited in config.yaml since the checkpoint)" if key in edited else ""
            print(f"Resuming with {key} {old!r} -> {new!r}{how}", file=sys.stderr)
        exp.trainer.callbacks.append(ApplyChanges({k: new for k, (_, new) in changes.items() if k in SAFE}))
        history = info.get("changes") if isinstance(info.get("changes"), list) else []
        update_run_json(run_dir, changes=[*history, {"at": now(), "set": {k: [o, n] for k, (o, n) in
                                                                           changes.items()}}])
    save_config(cfg, path)
    update_run_json(run_dir, max_epochs=cfg.train.epochs)
    code = execute(exp, run_dir, resume=True, quiet=args.quiet)
    if args.quiet and code == 0:
        print(summary_line(run_dir, read_run_json(run_dir)))
    return code

"""``fittorch fit CONFIG.yaml``: train from a config into a new run directory."""

from __future__ import annotations

from ._args import positive_int

EXAMPLE = """\
example:
  fittorch fit examples/configs/digits.yaml
      # -> runs/digits/ with config.yaml, metrics.csv, curves.png, model.safetensors, run.json
  fittorch fit examples/configs/digits.yaml --set train.epochs=5 --set optimizer.lr=0.01 --name quick
  fittorch fit my.yaml --out /tmp/runs       # then: fittorch runs /tmp/runs

exit codes: 0 done, 1 failed during training, 2 bad config or data,
            75 interrupted (SIGTERM/Ctrl-C) with a checkpoint: continue with `fittorch resume RUN_DIR`
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("fit", help="train from a YAML config into runs/NAME/",
                       description="Train a model from a YAML config (see docs/config.md). Each run gets its own "
                                   "folder runs/NAME/ (NAME-2, NAME-3, ... when it exists), never overwritten.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.yaml", help="the run config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config key, e.g. --set train.epochs=20 (repeatable; type-checked)")
    p.add_argument("--out", default="runs", metavar="RUNS_DIR", help="folder for run directories (default: runs)")
    p.add_argument("--name", help="run name (default: the config's name, else the file name)")
    p.add_argument("--run-dir", metavar="DIR",
                   help="use exactly this run directory instead of RUNS_DIR/NAME (it must not hold a run yet); "
                        "for launchers that start several processes of one run")
    p.add_argument("--quiet", action="store_true", help="print only the final summary line")
    p.add_argument("--nproc", type=positive_int, metavar="N",
                   help="train in N processes on this machine (DDP via torch.distributed.run: one per GPU, "
                        "or N CPU processes on gloo); see docs/distributed.md")
    p.set_defaults(run=run)


def run(args) -> int:
    import shutil

    from ..config import load_config, save_config
    from ..errors import ConfigError, DataError, DataTypeError, ModelError
    from ..experiment import Experiment, build_trainer, prepare_data
    from ..rundir import RunLock, check_run_name, create_run_dir
    from ..runs import execute, is_main_process

    cfg = load_config(args.config, args.overrides)
    cfg.search = None  # a tune config trains its base values; its search: section is for `fittorch tune`
    if args.name:
        cfg.name = check_run_name(args.name)
    check_run_name(cfg.name)
    if args.nproc and args.nproc > 1:  # re-run this command in N processes under torch's launcher
        from .launch import launch

        run_dir = exact_run_dir(args.run_dir) if args.run_dir else create_run_dir(args.out, cfg.name)
        return launch([*args.argv, *([] if args.run_dir else ["--run-dir", str(run_dir)])], args.nproc)
    prep, splits = prepare_data(cfg)  # bad config or data fails here, before a run directory is made
    main = is_main_process()
    if args.run_dir:
        run_dir = exact_run_dir(args.run_dir)
        created = not run_dir.exists()
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
    else:  # mkdir is atomic: two fits of one name at once get NAME and NAME-2
        run_dir, created = create_run_dir(args.out, cfg.name), True
    trainer = None
    try:
        with RunLock(run_dir) if main else _no_lock():  # one writer per run folder
            trainer = build_trainer(cfg, prep, run_dir=run_dir, has_val=splits.val is not None, quiet=args.quiet)
            trainer.run_config = cfg.to_dict()  # saved in each checkpoint: resume compares config.yaml with it
            exp = Experiment(cfg, prep, splits, trainer)
            if main:
                save_config(cfg, run_dir / "config.yaml")
            code = execute(exp, run_dir, quiet=args.quiet)
    except (ConfigError, DataError, DataTypeError, ModelError):
        if created and main and (trainer is None or trainer.state.global_step == 0):  # refused: leave no run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    if args.quiet and code == 0 and main:
        from ..runs import read_run_json, summary_line

        print(summary_line(run_dir, read_run_json(run_dir)))
    return code


def _no_lock():
    import contextlib

    return contextlib.nullcontext()


def exact_run_dir(path):
    from pathlib import Path

    from ..errors import ConfigError

    p = Path(path)
    if (p / "run.json").exists():
        raise ConfigError(f"--run-dir {p} already holds a run. Continue it with: fittorch resume {p}")
    return p

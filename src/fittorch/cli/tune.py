"""``fittorch tune CONFIG.yaml``: hyperparameter search on Optuna over the config's ``search:`` section."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch tune examples/configs/digits_tune.yaml
      # -> runs/digits_tune/: trials/trial-0000/ ... (normal run folders), best.yaml, report.html
  fittorch tune examples/configs/digits_tune.yaml --trials 30 --set train.epochs=10
  fittorch tune digits_tune.yaml & fittorch tune digits_tune.yaml   # two workers, one study
  fittorch fit runs/digits_tune/best.yaml                            # train the best config again
  fittorch tune my.yaml --storage postgresql://user:pass@db/optuna   # workers on several machines

Killed (even kill -9) or interrupted? Run the same command again: finished trials are kept and
the interrupted trial resumes from its last checkpoint.

exit codes: 0 done, 1 every trial failed, 2 bad config/data/storage (nothing ran),
            75 interrupted (SIGTERM/Ctrl-C) with a checkpoint: run the same command again
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("tune", help="search hyperparameters (Optuna) over the config's search: section",
                       description="Run a hyperparameter search described by the config's search: section "
                                   "(see docs/tune.md). Each trial is a run folder under RUNS_DIR/NAME/trials/; "
                                   "the study lives in RUNS_DIR/NAME/study.journal unless --storage says "
                                   "otherwise. Needs the tune extra: pip install 'fittorch[tune]'.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.yaml", help="a run config with a search: section")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config key, e.g. --set train.epochs=10 or --set search.pruner=none")
    p.add_argument("--storage", metavar="URL",
                   help="a journal file path, or a database URL such as postgresql://user:pass@host/db "
                        "(default: RUNS_DIR/NAME/study.journal)")
    p.add_argument("--trials", type=int, metavar="N", help="completed + pruned trials the study should hold")
    p.add_argument("--timeout", type=float, metavar="S", help="start no new trial after S seconds")
    p.add_argument("--out", default="runs", metavar="RUNS_DIR", help="folder for the study (default: runs)")
    p.add_argument("--name", help="study name and folder (default: the config's name)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(run=run)


def run(args) -> int:
    import importlib.util

    from ..errors import ConfigError

    if importlib.util.find_spec("optuna") is None:
        raise ConfigError("fittorch tune needs optuna, which is not installed. Install the extra: "
                          "pip install 'fittorch[tune]'")
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: give at least 1.")
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout {args.timeout}: give a number of seconds above 0.")
    from ..tuning.api import tune

    result = tune(args.config, overrides=args.overrides, storage=args.storage, trials=args.trials,
                  timeout=args.timeout, out=args.out, name=args.name,
                  log=(lambda *a, **k: None) if args.quiet else print)
    s = result.summary
    c = s["counts"]
    line = (f"study {s['name']}: {c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} failed"
            f"{', ' + str(c['RUNNING']) + ' running' if c['RUNNING'] else ''}")
    if s["best"]:
        line += f" | best {s['metric']} {s['best']['value']:.4f} (trial {s['best']['number']})"
    print(line + f" -> {result.study_dir}/{'best.yaml, ' if s['best'] else ''}report.html")
    if result.exit_code == 75:
        import sys

        print(f"Interrupted. Continue with the same command: fittorch tune {args.config}"
              + "".join(f" --set {o}" for o in args.overrides) + (f" --name {args.name}" if args.name else ""),
              file=sys.stderr)
    return result.exit_code

"""``fittorch doctor``: check a training setup in seconds, before spending hours on it."""

from __future__ import annotations

EXAMPLE = """\
example:
  fittorch doctor experiment.yaml                 # the checklist; exit 1 if any check fails
  fittorch doctor experiment.yaml --json > doctor.json
  fittorch doctor experiment.yaml --set optimizer.lr=10 --strict
  fittorch doctor --demo --gradcheck              # the reference experiment

exit codes: 0 no check failed, 1 a check failed (or warned, with --strict), 2 usage or config error.
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("doctor", help="check a training setup (data, init, gradients, LR, ...) in seconds",
                       description="Run quick checks on a training setup before training it: data sanity and "
                                   "leakage, the initial loss, gradient flow, overfitting one batch, an LR range "
                                   "test (lr_range.png), train/eval mode, determinism and, optionally, gradcheck.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="the experiment's YAML config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optimizer.lr=0.01 (repeatable)")
    p.add_argument("--demo", action="store_true", help="examine the reference experiment instead of a config")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", default="runs/doctor", help="folder for lr_range.png (default runs/doctor)")
    p.add_argument("--checks", help="comma-separated check ids or groups to run, e.g. data,init_loss")
    p.add_argument("--gradcheck", action="store_true", help="also run torch.autograd.gradcheck in float64")
    p.add_argument("--device", help="override the device (auto, cpu, cuda, ...)")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--verbose", action="store_true", help="show each check's evidence")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..doctor import doctor
    from ..errors import ConfigError

    if args.demo == bool(args.config):
        raise ConfigError("fittorch doctor needs either a CONFIG.yaml or --demo (not both). "
                          "Example: fittorch doctor experiment.yaml")
    kwargs = demo_setup() if args.demo else _from_config(args.config, args.overrides)
    if args.device:
        kwargs["device"] = args.device
    report = doctor(**kwargs, gradcheck=args.gradcheck, checks=args.checks, out=args.out)
    if args.json:
        print(report.to_json())
    else:
        print(report.render(verbose=args.verbose))
        if "lr_range" in report and "plot" in report["lr_range"].evidence:
            print(f"LR range plot: {report['lr_range'].evidence['plot']}", file=sys.stderr)
    return report.exit_code(strict=args.strict)


def _from_config(path, overrides):
    from ..doctor import from_config

    return from_config(path, overrides)


def demo_setup() -> dict:
    """The reference experiment, as the doctor's arguments (MLP 20->64->2, Adam 1e-3, batch 32)."""
    from ..demo import make_reference_data
    from ..models import MLP
    from ..seeding import seed_everything

    train, val, _ = make_reference_data()
    seed_everything(42)
    return {"model": MLP(20, [64], 2), "train": train, "val": val, "loss": "cross_entropy", "optimizer": "adam",
            "lr": 1e-3, "batch_size": 32, "seed": 42, "standardize": True}

"""``fittorch demo``: the reference experiment end to end."""

from __future__ import annotations

from ._args import positive_float, positive_int, seed

EXAMPLE = """\
example:
  fittorch demo                       # 100 epochs, writes runs/demo/
  fittorch demo --epochs 20 --out /tmp/demo --quiet
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("demo", help="run the reference experiment (MLP on make_classification)",
                       description="Train the lesson's MLP on make_classification(1000x20), save curves, "
                                   "metrics and the model, then reload it and check the accuracy.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=seed, default=42)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--no-shuffle", action="store_true", help="batch in stored order, exactly like the lesson's loop")
    p.add_argument("--quiet", action="store_true", help="print only the final accuracy line")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..demo import run_demo

    result = run_demo(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, out=args.out, quiet=args.quiet, shuffle=not args.no_shuffle)
    if args.quiet:
        print(f"test accuracy {result.accuracy:.4f} (reloaded {result.reloaded_accuracy:.4f}) -> {result.out}")
    return 0 if result.accuracy == result.reloaded_accuracy else 1

"""The ``fittorch`` command line.

Each command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
``COMMANDS`` lists them in help order. Errors print as one line with a hint; ``--debug``
shows the traceback.

Exit codes: 0 success, 1 failure during a run, 2 usage or config error, 75 interrupted
with a checkpoint (continue with ``fittorch resume RUN_DIR``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .._version import __version__

COMMANDS = ["fit", "resume", "tune", "evaluate", "predict", "report", "runs", "demo"]  # modules under fittorch.cli
if importlib.util.find_spec(f"{__name__}.doctor") is not None:  # written by the doctor issue
    COMMANDS.insert(COMMANDS.index("demo"), "doctor")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

EPILOG = """\
worked example (a CSV file with a label column, no Python code):
  cat > iris.yaml <<'YAML'
  data: {source: iris.csv, target: species, test_split: 0.2}
  model: {type: mlp, hidden: [32]}
  train: {epochs: 60, batch_size: 16}
  YAML
  fittorch fit iris.yaml                          # -> runs/iris/ (model, metrics.csv, curves.png)
  fittorch evaluate runs/iris                     # metrics on the held-out test split
  fittorch predict runs/iris new.csv -o preds.csv # predictions with the original label names
  fittorch runs                                   # compare runs

exit codes: 0 ok, 1 failed during a run, 2 usage/config/data error, 75 interrupted (resumable).
Run 'fittorch COMMAND --help' for a worked example of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fittorch",
        description="Train PyTorch models with a complete, correct and fast training loop.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fittorch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, also after the command
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    args.argv = argv  # what `fit --nproc N` re-executes under torch.distributed.run
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("fittorch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into exit codes
        from ..errors import ConfigError, DataError, DataTypeError, FittorchError, ModelError

        if args.debug:
            raise
        usage = isinstance(exc, (ConfigError, DataError, DataTypeError, ModelError))
        name = "error" if isinstance(exc, FittorchError) else type(exc).__name__
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fittorch: {name}: {message}", file=sys.stderr)
        print("hint: run again with --debug for the full traceback.", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_FAILURE

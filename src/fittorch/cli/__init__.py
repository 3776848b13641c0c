"""The ``fittorch`` command line.

Each command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
``COMMANDS`` lists them in help order. Errors print as one line with a hint; ``--debug``
shows the traceback.

Commands cost what they do. ``build_parser`` imports every command module to build the help,
so a command module imports nothing heavy at its top: only the standard library and
``fittorch`` modules that are themselves light (``import fittorch`` imports no torch).
torch, pandas, matplotlib, sklearn, pydantic and fittorch's training modules are imported
inside ``run(args)``, and only those the command needs::

    def add_parser(sub) -> None:      # argparse only
        p = sub.add_parser("mycmd", help=...)
        p.set_defaults(run=run)

    def run(args) -> int:
        from ..runs import load_run   # heavy imports here, where the work is
        ...

So ``fittorch --help`` and ``fittorch runs`` never import torch, ``predict`` and ``evaluate``
build no optimizer (no ``torch._dynamo``) and need no torchmetrics for the default metrics,
and no command but ``report``/``fit`` imports matplotlib. ``tests/test_imports.py`` checks
this for every command in ``COMMANDS`` in fresh processes.

Exit codes: 0 success, 1 failure during a run, 2 usage or config error, 75 interrupted
with a checkpoint (continue with ``fittorch resume RUN_DIR``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__

# modules under fittorch.cli, in help order
COMMANDS = ["fit", "resume", "tune", "evaluate", "predict", "export", "report", "runs", "doctor", "demo"]

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
    import warnings

    previous = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _plain_fittorch_warning(previous)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("fittorch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into exit codes
        from ..errors import ConfigError, DataError, DataTypeError, FittorchError, ModelError, OutputError

        if args.debug:
            raise
        usage = isinstance(exc, (ConfigError, DataError, DataTypeError, ModelError, OutputError))
        name = "error" if isinstance(exc, FittorchError) else type(exc).__name__
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        # a fittorch error may list several problems, one per line (a config with many mistakes)
        message = "\n".join(lines[:25]) if isinstance(exc, FittorchError) else lines[0]
        print(f"fittorch: {name}: {message}", file=sys.stderr)
        print("hint: run again with --debug for the full traceback.", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_FAILURE
    finally:
        warnings.formatwarning = previous


def _plain_fittorch_warning(default):
    """fittorch's own warnings as one line for people (``fittorch: warning: ...``), not a source excerpt."""

    def fmt(message, category, filename, lineno, line=None):
        if category.__module__.startswith("fittorch"):
            return f"fittorch: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    return fmt

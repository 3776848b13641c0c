"""Argument types shared by the commands (no heavy imports: ``fittorch --help`` loads this)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """``--batch-size``: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1 or value > 1 << 31:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected an integer from 1 to {1 << 31}")
    return value


def add_trust_code(p) -> None:
    p.add_argument("--trust-code", action="store_true",
                   help="allow the run's config.yaml to import and run code (model.type: import); "
                        "only for run folders whose code you have checked")

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


def seed(text: str) -> int:
    """``--seed``: an integer in [0, 2**32), what numpy and scikit-learn accept."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is out of range; expected 0 <= seed < 2**32")
    return value


def positive_float(text: str) -> float:
    """``--lr``: a finite number above 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{value} must be a finite number above 0")
    return value

"""fittorch's exceptions.

Every error a user can cause is a :class:`FittorchError` that also subclasses the
matching builtin (``ValueError``, ``TypeError``, ...), so ``except ValueError`` keeps
working. The message follows one rule: what happened (with the values seen), what was
expected, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FittorchError(Exception):
    """Base class of every exception fittorch raises on purpose."""


class ConfigError(FittorchError, ValueError):
    """A setting passed to fittorch (argument, config key, name) is not valid."""


class DataError(FittorchError, ValueError):
    """The data has the wrong values or shape (lengths, NaNs, class range, ...)."""


class DataTypeError(FittorchError, TypeError):
    """The data or an argument has the wrong type."""


class ModelError(FittorchError, ValueError):
    """The model does not fit the data or the task (shapes, no parameters, ...)."""


class NotFittedError(FittorchError, RuntimeError):
    """``evaluate``/``predict`` was called on a trainer that has not been fitted."""


class CheckpointError(FittorchError, RuntimeError):
    """A checkpoint or saved model could not be written or read safely."""


class TrainingError(FittorchError, RuntimeError):
    """Training itself failed (a non-finite loss, a diverged run, ...)."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    choices = [str(c) for c in choices]  # read twice below: a generator would be empty the second time
    matches = difflib.get_close_matches(str(value).lower(), [c.lower() for c in choices], n=1, cutoff=0.5)
    if not matches:
        return ""
    original = {c.lower(): c for c in choices}[matches[0]]
    return f" Did you mean '{original}'?"


def unknown_name(kind: str, value: str, choices: Iterable[str], hint: str = "") -> ConfigError:
    """Build the standard "unknown name" error: names the value, the choices, a guess."""
    choices = sorted(choices)
    msg = f"Unknown {kind} '{value}'.{did_you_mean(value, choices)} Expected one of: {', '.join(choices)}."
    if hint:
        msg += f" {hint}"
    return ConfigError(msg)


class OutputError(FittorchError, OSError):
    """A file could not be written where it was asked for (read-only folder, a file in the way, disk full)."""


class RunLockedError(FittorchError, RuntimeError):
    """Another process is writing this run folder (fit, resume or tune): one writer per run."""

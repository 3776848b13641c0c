"""Tracing the serving module with ``torch.export`` and saying why, when it can't be traced.

One trace serves both formats: the ExportedProgram is saved as ``.pt2`` or converted to ONNX.
The batch dimension is dynamic. torch's exporters print graphs and warnings while they work;
that output is captured; on failure it is kept on the error as ``ExportFailed.log``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import traceback
import warnings
from pathlib import Path

import torch

from ..errors import ModelError

_SKIP_DIRS = (str(Path(torch.__file__).parent), str(Path(__file__).parents[1]), "onnxscript", "onnx/", "<frozen")


class ExportFailed(ModelError):
    """The exporter could not trace or convert the model; ``.log`` holds what the exporter printed."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


@contextlib.contextmanager
def quiet_exporter(log: io.StringIO):
    """Capture what torch.export / torch.onnx print (graphs, warnings, progress)."""
    loggers = [logging.getLogger(n) for n in ("torch", "torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def trace(module: torch.nn.Module, args: tuple, what: str, *, varargs: bool = False) -> torch.export.ExportedProgram:
    """``torch.export.export`` with a dynamic batch dimension on every input; errors for people.

    ``varargs``: the module's forward is ``forward(*tensors)`` (:class:`NamedInputs`).
    """
    batch = torch.export.Dim("batch", min=1)
    per_input = tuple({0: batch} for _ in args)
    log = io.StringIO()
    module.eval()
    try:
        with quiet_exporter(log):
            return torch.export.export(module, args, dynamic_shapes=(per_input,) if varargs else per_input,
                                       strict=False)
    except Exception as exc:  # noqa: BLE001 - torch.export raises many internal types; each becomes one message
        raise untraceable(exc, what, log.getvalue()) from None


def untraceable(exc: BaseException, what: str, log: str) -> ExportFailed:
    """Which line of the user's forward failed, why, and what to do."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    where = user_frame(exc)
    text = f"{type(root).__name__}: {str(root).strip().splitlines()[0][:300] if str(root).strip() else ''}"
    name = type(root).__name__
    at = f" at {where}" if where else ""
    if "DataDependent" in name or "data-dependent" in str(root) or "data dependent" in str(root):
        why = (f"its forward branches on the values of a tensor{at} (an `if`/`while` on a tensor, or "
               ".item()/.tolist()), which a traced graph cannot do. Write the branch with tensor ops (torch.where), "
               "or with torch.cond for real control flow, or move the decision out of forward")
    elif "Constraints violated" in str(root) and "batch" in str(root):
        size = re.search(r"constant \((\d+)\)", str(root))
        why = (f"its forward fixes the batch size{' to ' + size.group(1) if size else ''} (a reshape/view with a "
               "literal size, or an `if` on x.shape[0]), so the exported graph could not take any number of rows. "
               "Use x.reshape(x.shape[0], ...) or -1 for the batch dimension, and no branch on the batch size")
    elif ".numpy()" in str(root) or "tolist" in str(root):
        why = (f"its forward leaves torch{at} (.numpy(), .tolist() or a Python value computed from a tensor). "
               "Keep the computation in torch ops")
    else:
        why = (f"torch.export failed{at} with {text}. See https://pytorch.org/docs/stable/export.html for what "
               "it supports")
    return ExportFailed(f"{what} cannot be exported: {why}. (The exporter said: {text})", log)


def user_frame(exc: BaseException) -> str:
    """``file:line: code`` of the innermost frame in user code (not torch, not fittorch), or ""."""
    found = ""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame in traceback.extract_tb(exc.__traceback__):
            if not any(d in frame.filename for d in _SKIP_DIRS):
                found = f"{frame.filename}:{frame.lineno}" + (f" `{frame.line.strip()}`" if frame.line else "")
        exc = exc.__cause__ or exc.__context__
    return found


def unconvertible(exc: BaseException, what: str, log: str) -> ExportFailed:
    """torch.export traced the model, but an op in it has no ONNX translation."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    message = f"{exc} {root}"
    ops = sorted(set(re.findall(r"aten[:.]{1,2}[A-Za-z_0-9.]+", message)))
    op = f" (op: {', '.join(ops[:3])})" if ops else ""
    first = str(root).strip().splitlines()[0][:300].rstrip(".") if str(root).strip() else type(root).__name__
    return ExportFailed(f"{what} was traced, but torch's ONNX exporter could not convert it{op}: {first}. "
                        "Export to pt2 instead (--format pt2, or format='pt2'), or replace that op in the model.", log)

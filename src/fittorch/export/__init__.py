"""Export a trained model for serving: ONNX or a torch.export program, preprocessing included.

``fittorch export RUN_DIR --format onnx|pt2`` and ``trainer.export(path, format=..., example=...)``.
The parity check runs the written file against fittorch's predict before it is kept.
See docs/export.md.
"""

from __future__ import annotations

from .api import DEFAULT_TOLERANCE, FORMATS, ExportResult, export_run, export_trainer
from .parity import ParityError
from .trace import ExportFailed

__all__ = ["FORMATS", "DEFAULT_TOLERANCE", "ExportResult", "ExportFailed", "ParityError", "export_run",
           "export_trainer"]

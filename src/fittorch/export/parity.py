"""The parity check: the exported file, run as a server would run it, against fittorch's predict.

The ``.onnx`` file runs on onnxruntime and the ``.pt2`` file through ``torch.export.load``, both
from the file just written. Each output is compared with the eager reference; the check fails
when ``max |exported - eager|`` exceeds ``tolerance * max(1, max |eager|)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError


class ParityError(ModelError):
    """The exported model's outputs differ from fittorch's predict by more than the tolerance."""


@dataclass
class Parity:
    rows: int
    max_abs_diff: float
    per_output: dict
    tolerance: float
    rows_from: str

    def line(self) -> str:
        parts = ", ".join(f"{k} {v:.2e}" for k, v in self.per_output.items())
        return (f"parity on {self.rows} rows ({self.rows_from}): max |exported - fittorch predict| = "
                f"{self.max_abs_diff:.2e} ({parts}); tolerance {self.tolerance:g}")


def run_exported(path: Path, fmt: str, inputs, output_names: list[str]) -> dict[str, np.ndarray]:
    if fmt == "onnx":
        from ..serving import OnnxModel

        return OnnxModel(path).run(inputs)
    program = torch.export.load(str(path))
    module = program.module()
    with torch.no_grad():
        if isinstance(inputs, dict):
            out = module(*(torch.as_tensor(v) for v in inputs.values()))
        else:
            out = module(torch.as_tensor(inputs))
    out = out if isinstance(out, (tuple, list)) else (out,)
    return {name: t.detach().cpu().numpy() for name, t in zip(output_names, out)}


def check(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], *, tolerance: float, rows: int,
          rows_from: str, fmt: str) -> Parity:
    per_output = {}
    failed = []
    for name, ref in expected.items():
        ref = np.asarray(ref, dtype=np.float64)
        if name not in got:
            raise ModelError(f"The exported {fmt} model has no output {name!r} (it has {', '.join(got)}).")
        out = np.asarray(got[name], dtype=np.float64).reshape(ref.shape)
        if not np.isfinite(out).all() and np.isfinite(ref).all():
            diff = float("inf")
        else:
            diff = float(np.max(np.abs(out - ref))) if ref.size else 0.0
        per_output[name] = diff
        limit = tolerance * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        if diff > limit:
            failed.append(f"{name}: max abs difference {diff:.3g} > {limit:.3g}")
    result = Parity(rows, max(per_output.values(), default=0.0), per_output, tolerance, rows_from)
    if failed:
        raise ParityError(
            f"The exported {fmt} model does not reproduce fittorch's predict on {rows} rows ({rows_from}): "
            f"{'; '.join(failed)} (tolerance {tolerance:g} x max(1, max |expected|)). Nothing was written. "
            "The model's forward probably depends on something the trace froze (Python state, numpy, random "
            "numbers, the batch size, torch.compiler.is_exporting()); make forward depend on its inputs and weights "
            "only, or pass a larger --tolerance if the difference is expected.")
    return result

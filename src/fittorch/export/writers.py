"""Writing an ExportedProgram as ``.onnx`` or ``.pt2``, with the contract in the file's metadata.

Each writer writes to a temporary file beside the target; :func:`publish` fsyncs it and renames
it into place once the parity check passed, so a failed export never leaves a file behind.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from ..serving import METADATA_KEY
from .trace import quiet_exporter, unconvertible
from .wrap import Contract

PT2_EXTRA_FILE = "fittorch.json"  # the contract inside the .pt2 archive (torch.export.save's extra_files)
ONNX_OPSET = 20


def import_onnx():
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError as exc:
        from ..errors import ConfigError

        raise ConfigError(f"Exporting to ONNX needs onnx and onnxscript ({exc}). "
                          'Install them with: pip install "fittorch[export]"') from None
    return onnx


def write_pt2(program: torch.export.ExportedProgram, path: Path, contract: Contract) -> None:
    torch.export.save(program, str(path), extra_files={PT2_EXTRA_FILE: json.dumps(contract.to_dict())})


def write_onnx(program: torch.export.ExportedProgram, path: Path, contract: Contract, what: str) -> None:
    onnx = import_onnx()
    log = io.StringIO()
    try:
        with quiet_exporter(log):
            onnx_program = torch.onnx.export(program, (), dynamo=True, input_names=contract.input_names,
                                             output_names=contract.output_names, opset_version=ONNX_OPSET,
                                             optimize=True, verbose=False)
    except Exception as exc:  # noqa: BLE001 - the exporter's errors are internal types; one message for people
        raise unconvertible(exc, what, log.getvalue()) from None
    proto = onnx_program.model_proto
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].dim_param = "batch"
    proto.doc_string = f"fittorch export of {contract.source}"
    meta = {METADATA_KEY: json.dumps(contract.to_dict()), "feature_names": json.dumps(contract.feature_names),
            "class_names": json.dumps(contract.classes), "task": contract.task}
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def temp_path(final: Path) -> Path:
    return final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")


def publish(tmp: Path, final: Path) -> None:
    """fsync the finished file, rename it over ``final``, fsync the folder."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    try:
        fd = os.open(final.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

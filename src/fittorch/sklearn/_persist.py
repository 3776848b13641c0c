"""Tensors as safetensors bytes, for pickling fitted estimators.

A fitted estimator pickles its weights and its optimizer state as safetensors byte
blobs plus plain data (the module's recipe, the optimizer's hyper-parameters, the
train state), never as a pickled ``nn.Module`` or pickled tensors.
"""

from __future__ import annotations

import torch
from torch import nn

_TENSOR = "__fittorch_tensor__"


def tensors_to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """``{name: tensor}`` as one safetensors blob (CPU, contiguous, shared storage split apart)."""
    from safetensors.torch import save

    out: dict[str, torch.Tensor] = {}
    seen: set = set()
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)) if t.numel() else None
        if key is not None and key in seen:  # tied weights: safetensors refuses shared storage
            t = t.clone()
        seen.add(key)
        out[name] = t
    return save(out)


def bytes_to_tensors(blob: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(blob)


def module_to_bytes(module: nn.Module) -> bytes:
    return tensors_to_bytes(module.state_dict())


def split_tensors(obj, prefix: str = "t"):
    """Replace every tensor in a nested dict/list structure by a placeholder.

    Returns ``(structure, blob)``: the structure is plain Python data, the blob holds the tensors.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(value, path):
        if isinstance(value, torch.Tensor):
            tensors[path] = value
            return {_TENSOR: path}
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v, f"{path}.{i}") for i, v in enumerate(value))
        return value

    structure = walk(obj, prefix)
    return structure, tensors_to_bytes(tensors)


def join_tensors(structure, blob: bytes):
    """Inverse of :func:`split_tensors`."""
    tensors = bytes_to_tensors(blob)

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {_TENSOR}:
                return tensors[value[_TENSOR]]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return walk(structure)

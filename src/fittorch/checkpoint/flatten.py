"""Nested run state <-> (flat tensors, JSON tree), so that nothing is ever pickled.

``state_dict()`` of an optimizer, a scheduler or a callback is a tree of dicts, lists,
tuples, numbers, strings, tensors and numpy arrays, with int keys in places (optimizer
state is keyed by parameter index). :func:`flatten` moves every tensor into a flat
``{key: tensor}`` dict (written with safetensors) and turns the rest into JSON, tagging
what JSON cannot say by itself:

* a tensor becomes ``{"__tensor__": key}``;
* a numpy array becomes ``{"__ndarray__": key, "dtype": ..., "shape": ...}`` (its raw bytes as a
  uint8 tensor, so every dtype round-trips exactly);
* a tuple becomes ``{"__tuple__": [...]}``;
* a dict with non-string keys becomes ``{"__items__": [[key, value], ...]}``;
* a numpy scalar becomes ``{"__npscalar__": dtype, "value": ...}``.

Floats are written with ``repr`` by ``json``, which round-trips every float64 exactly
(inf and nan included). :func:`unflatten` is the exact inverse.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CheckpointError

_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__items__", "__npscalar__")


def flatten(tree, prefix: str = "") -> tuple[dict, dict[str, torch.Tensor]]:
    """Return ``(json_tree, tensors)``; tensor keys start with ``prefix``."""
    tensors: dict[str, torch.Tensor] = {}
    json_tree = _flatten(tree, prefix.rstrip("/") or "t", tensors, set())
    return json_tree, tensors


def _flatten(obj, path: str, tensors: dict, seen: set):
    if isinstance(obj, torch.Tensor):
        key = _unique(path, tensors)
        t = obj.detach().cpu().contiguous()
        # Serialised right away, so no copy is needed -- except for tensors sharing memory,
        # which safetensors refuses.
        storage = t.untyped_storage().data_ptr() if t.numel() else None
        if storage is not None and storage in seen:
            t = t.clone()
        seen.add(storage)
        tensors[key] = t
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = _unique(path, tensors)
        data = np.ascontiguousarray(obj)
        tensors[key] = torch.from_numpy(np.frombuffer(data.tobytes(), dtype=np.uint8).copy())
        return {"__ndarray__": key, "dtype": data.dtype.str, "shape": list(data.shape)}
    if isinstance(obj, np.generic):
        return {"__npscalar__": obj.dtype.str, "value": obj.item()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in _TAGS for k in obj):
            return {k: _flatten(v, f"{path}/{k}", tensors, seen) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise CheckpointError(f"Cannot save state at '{path}': dict key {k!r} ({type(k).__name__}) "
                                      "is not a str, int, float or bool.")
            items.append([k, _flatten(v, f"{path}/{k}", tensors, seen)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, f"{path}/{i}", tensors, seen) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, f"{path}/{i}", tensors, seen) for i, v in enumerate(obj)]
    raise CheckpointError(
        f"Cannot save state at '{path}': a {type(obj).__module__}.{type(obj).__qualname__} is neither a tensor, "
        "an array nor plain data (dict, list, tuple, str, number, bool, None). Checkpoints never pickle "
        "objects; make the component's state_dict() return plain data."
    )


def _unique(key: str, tensors: dict) -> str:
    n, out = 1, key
    while out in tensors:
        n, out = n + 1, f"{key}#{n + 1}"
    return out


def unflatten(json_tree, tensors: dict[str, torch.Tensor]):
    """Rebuild the tree :func:`flatten` took apart."""
    if isinstance(json_tree, list):
        return [unflatten(v, tensors) for v in json_tree]
    if not isinstance(json_tree, dict):
        return json_tree
    if "__tensor__" in json_tree:
        return _tensor(tensors, json_tree["__tensor__"])
    if "__ndarray__" in json_tree:
        raw = _tensor(tensors, json_tree["__ndarray__"]).numpy().tobytes()
        return np.frombuffer(raw, dtype=np.dtype(json_tree["dtype"])).reshape(json_tree["shape"]).copy()
    if "__npscalar__" in json_tree:
        return np.dtype(json_tree["__npscalar__"]).type(json_tree["value"])
    if "__tuple__" in json_tree:
        return tuple(unflatten(v, tensors) for v in json_tree["__tuple__"])
    if "__items__" in json_tree:
        return {k: unflatten(v, tensors) for k, v in json_tree["__items__"]}
    return {k: unflatten(v, tensors) for k, v in json_tree.items()}


def _tensor(tensors: dict, key: str) -> torch.Tensor:
    try:
        return tensors[key]
    except KeyError:
        raise CheckpointError(f"The checkpoint's JSON refers to tensor '{key}', which its tensor file lacks; "
                              "the checkpoint is damaged. Use an earlier checkpoint.") from None

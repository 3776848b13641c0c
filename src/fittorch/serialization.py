"""Saving and loading model weights: safetensors for tensors, JSON for everything else.

No pickle is written or read, so loading a file can never run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ._version import __version__
from .errors import CheckpointError


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    if p.suffix != ".safetensors":
        p = p / "model.safetensors" if (p.is_dir() or not p.suffix) else p.with_suffix(".safetensors")
    return p, p.with_suffix(".json")


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_model(model: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``model.json`` (spec, preprocessing, versions).

    ``path`` is a file (``.../model.safetensors``) or a directory, which gets ``model.*``.
    """
    from safetensors.torch import save_file

    from .models import model_spec

    model = unwrap(model)
    weights, meta_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Tied weights share storage; safetensors refuses shared tensors, so clone them apart.
    seen: dict = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) if v.numel() else None
        if key is not None and key in seen:
            state[k] = v.clone()
        seen[key] = k
    save_file(state, str(weights), metadata={"format": "pt", "fittorch": __version__})
    meta = {
        "fittorch_version": __version__,
        "torch_version": torch.__version__,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "spec": model_spec(model),
        "parameters": {k: list(v.shape) for k, v in state.items()},
    }
    meta.update(metadata or {})
    meta_path.write_text(json.dumps(meta, indent=2, default=_json_default))
    return weights


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def read_metadata(path: str | os.PathLike) -> dict:
    _, meta_path = _paths(path)
    if not meta_path.exists():
        return {}
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path} is not valid JSON ({exc}). The file is damaged; re-save the model.") from None


def load_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, _ = _paths(path)
    if not weights.exists():
        raise CheckpointError(f"No weights file at {weights}. Expected a .safetensors file written by fittorch.save.")
    try:
        return load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} could not be read as safetensors ({exc}); the file is truncated or damaged.") from None


def load_model(path: str | os.PathLike, model: nn.Module | None = None, *, device: str | torch.device = "cpu",
               strict: bool = True) -> nn.Module:
    """Load weights into ``model``, or rebuild a built-in model from its JSON spec.

    Names and shapes are checked first, with a clear error listing every mismatch.
    """
    from .models import build_model

    meta = read_metadata(path)
    if model is None:
        if not meta.get("spec"):
            raise CheckpointError(
                f"The model at {path} is a {meta.get('class', 'custom model')} with no rebuildable spec. "
                "Create the model yourself and pass it: fittorch.load(path, model=MyModel(...))."
            )
        model = build_model(meta["spec"])
    state = load_state(path)
    load_into(unwrap(model), state, source=str(path), strict=strict)
    return model.to(device)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, strict: bool = True) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong or (strict and (missing or unexpected)):
        parts = []
        if wrong:
            parts.append("shape mismatch: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        if strict and missing:
            parts.append(f"missing in file: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if strict and unexpected:
            parts.append(f"not in model: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(
            f"The weights in {source} do not fit {type(model).__name__}: " + " | ".join(parts)
            + ". Build the model with the same architecture it was saved with."
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=strict)

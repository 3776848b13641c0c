"""Saving and loading model weights: safetensors for tensors, JSON for everything else.

No pickle is written or read, so loading a file can never run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from . import safeio, schemas
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
    """Write ``model.safetensors`` and ``model.json`` (spec, preprocessing, versions), each atomically.

    ``path`` is a file (``.../model.safetensors``) or a directory, which gets ``model.*``.
    """
    from safetensors.torch import save

    from .models import model_spec

    model = unwrap(model)
    weights, meta_path = _paths(path)
    try:
        weights.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise safeio.output_error(weights, exc) from None
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Tied weights share storage; safetensors refuses shared tensors, so clone them apart.
    seen: dict = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) if v.numel() else None
        if key is not None and key in seen:
            state[k] = v.clone()
        seen[key] = k
    safeio.atomic_write(weights, save(state, metadata={"format": "pt", "fittorch": __version__}))
    meta = {
        "fittorch_version": __version__,
        "torch_version": torch.__version__,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "spec": model_spec(model),
        "parameters": {k: list(v.shape) for k, v in state.items()},
    }
    meta.update(metadata or {})
    try:
        text = json.dumps(meta, indent=2, default=_json_default, allow_nan=False)
    except ValueError:
        raise CheckpointError(f"Not saving {meta_path}: its metadata holds NaN or inf (e.g. a missing label among "
                              "the classes), which JSON cannot hold. Clean the data and train again.") from None
    safeio.atomic_write(meta_path, text)
    return weights


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def read_metadata(path: str | os.PathLike) -> dict:
    """``model.json`` next to the weights, read with a bound and validated ({} when there is none)."""
    _, meta_path = _paths(path)
    try:
        data = safeio.read_regular(meta_path, max_bytes=safeio.MAX_JSON, root=meta_path.parent, what="model file")
    except FileNotFoundError:
        return {}
    except safeio.UnsafeFile as exc:
        raise CheckpointError(str(exc)) from None
    raw, _ = schemas.parse_json(data, schemas.ModelJson, what=str(meta_path), error=CheckpointError, allow_nan=True,
                                hint="Re-save the model, or use the model.json it was saved with.")
    return raw


def header_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header, reading only the header (bounded)."""
    weights, _ = _paths(path)
    real = _checked_weights(weights)
    with open(real, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= n <= min(100 << 20, os.fstat(f.fileno()).st_size - 8):
            raise CheckpointError(f"{weights} is not a safetensors file (header length {n}); it is truncated or "
                                  "damaged.")
        try:
            header = schemas.loads(f.read(n))
            return {k: tuple(int(d) for d in v["shape"]) for k, v in header.items() if k != "__metadata__"}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CheckpointError(f"{weights} has a damaged safetensors header ({exc}).") from None


def check_shapes(model: nn.Module, shapes: dict[str, tuple[int, ...]], *, source: str, strict: bool = True) -> None:
    """Refuse weights whose names or shapes do not fit ``model`` (may live on the meta device)."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    wrong = [f"{k}: file {shapes[k]} vs model {own[k]}" for k in own if k in shapes and own[k] != shapes[k]]
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


def _checked_weights(weights: Path) -> Path:
    try:
        return safeio.check_regular(weights, root=weights.parent, what="weights file")
    except FileNotFoundError:
        raise CheckpointError(f"No weights file at {weights}. Expected a .safetensors file written by "
                              "fittorch.save.") from None
    except safeio.UnsafeFile as exc:
        raise CheckpointError(str(exc)) from None


def load_state(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, _ = _paths(path)
    real = _checked_weights(weights)  # a regular file: no FIFO, device or link out of its folder
    try:
        state = load_file(str(real), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} could not be read as safetensors ({exc}); the file is truncated or damaged.") from None
    warn_nonfinite(state, str(weights))
    return state


def warn_nonfinite(state: dict[str, torch.Tensor], source: str) -> bool:
    """Warn (and return False) when loaded weights hold NaN or inf."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        import warnings

        warnings.warn(f"The weights in {source} hold NaN or inf ({', '.join(bad[:5])}); predictions from them are "
                      "not meaningful. Use an earlier checkpoint.", NonFiniteWeightsWarning, stacklevel=3)
    return not bad


class NonFiniteWeightsWarning(UserWarning):
    """Loaded weights hold NaN or inf."""


def load_model(path: str | os.PathLike, model: nn.Module | None = None, *, device: str | torch.device = "cpu",
               strict: bool = True) -> nn.Module:
    """Load weights into ``model``, or rebuild a built-in model from its JSON spec.

    Names and shapes are checked first, with a clear error listing every mismatch; a model
    rebuilt from its spec is first built on the meta device and compared with the weights
    file's header, so an edited spec cannot allocate memory.
    """
    from .models import build_model

    meta = read_metadata(path)
    if model is None:
        if not meta.get("spec"):
            raise CheckpointError(
                f"The model at {path} is a {meta.get('class', 'custom model')} with no rebuildable spec. "
                "Create the model yourself and pass it: fittorch.load(path, model=MyModel(...))."
            )
        try:
            with torch.device("meta"):
                probe = build_model(meta["spec"])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"The model spec in {_paths(path)[1]} cannot be built ({exc}).") from None
        check_shapes(probe, header_shapes(path), source=str(path), strict=strict)
        model = build_model(meta["spec"])
    state = load_state(path)
    load_into(unwrap(model), state, source=str(path), strict=strict)
    return model.to(device)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, strict: bool = True) -> None:
    check_shapes(model, {k: tuple(v.shape) for k, v in state.items()}, source=source, strict=strict)
    with torch.no_grad():
        model.load_state_dict(state, strict=strict)

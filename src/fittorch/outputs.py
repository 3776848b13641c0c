"""Model outputs of any structure: a tensor, a tuple/list, a dict, or a dataclass/ModelOutput.

The rule that picks *the* output tensor (what metrics and ``predict`` use), ``output_key``:

- ``None`` (the default): a tensor is itself; a dict (or a Hugging Face ``ModelOutput``)
  gives its ``"logits"`` entry; a tuple/list gives its first element (index 0); a dataclass
  gives its ``logits`` field.
- a string: that key of a dict, or that attribute of an object (``output_key="features"``);
- an int: that index of a tuple/list (``output_key=1``).

A custom loss callable receives the output exactly as the model returned it. A named loss
(``"cross_entropy"``, ...) receives the selected tensor. A model that computes its own loss
(``loss=None``) returns it as ``output["loss"]`` or ``output.loss`` (or, for a tuple, as its
first element when that is a scalar).
"""

from __future__ import annotations

import dataclasses

import torch

from .errors import ConfigError, ModelError


def select(output, key=None):
    """The output tensor by the ``output_key`` rule (see the module docstring)."""
    if isinstance(output, torch.Tensor):
        return output
    if key is None:
        if isinstance(output, (tuple, list)):
            return output[0]
        if isinstance(output, dict) or hasattr(output, "keys"):
            if "logits" in output:
                return output["logits"]
        elif hasattr(output, "logits"):
            return output.logits
        raise ModelError(_no_rule(output))
    if isinstance(key, int) and isinstance(output, (tuple, list)):
        if not -len(output) <= key < len(output):
            raise ModelError(f"output_key={key}, but the model returned a {type(output).__name__} of "
                             f"{len(output)} items. Use an index from 0 to {len(output) - 1}.")
        return output[key]
    if isinstance(key, str):
        if isinstance(output, dict) or hasattr(output, "keys"):
            if key in output:
                return output[key]
            raise ModelError(f"output_key={key!r}, but the model's output has keys {list(output.keys())}. "
                             "Pass one of them as output_key.")
        if hasattr(output, key):
            return getattr(output, key)
    raise ModelError(f"output_key={key!r} does not apply to a {type(output).__name__} output. Use a key "
                     "(str) for a dict or object, an index (int) for a tuple.")


def _no_rule(output) -> str:
    what = describe(output)
    return (f"The model returned {what}, which has no 'logits' entry, so fittorch does not know which tensor "
            "metrics and predict should use. Pass output_key= naming it (a dict key or attribute, or a tuple "
            "index), or return the logits under the key 'logits'.")


def model_loss(output) -> torch.Tensor:
    """The loss a model computed itself (``loss=None``)."""
    if isinstance(output, dict) or hasattr(output, "keys"):
        if "loss" in output and output["loss"] is not None:
            return output["loss"]
    elif hasattr(output, "loss") and getattr(output, "loss") is not None:
        return output.loss
    elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor) \
            and output[0].ndim == 0:
        return output[0]
    raise ModelError(
        f"loss=None means the model computes its own loss, but it returned {describe(output)} without a "
        "'loss'. Return it as output['loss'] (or output.loss) when the target is passed as labels=..., "
        "or give the Trainer a loss such as loss='cross_entropy'."
    )


def describe(output) -> str:
    """A short description of an output structure, for messages."""
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, dict) or hasattr(output, "keys"):
        return f"a {type(output).__name__} with keys {list(output.keys())}"
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)} items"
    if dataclasses.is_dataclass(output):
        return f"a {type(output).__name__} with fields {[f.name for f in dataclasses.fields(output)]}"
    return f"a {type(output).__name__}"


def to_cpu_structure(output):
    """The same structure with every tensor detached, as float32 on the CPU (``predict(structure=True)``)."""
    if isinstance(output, torch.Tensor):
        return output.detach().float().cpu() if output.is_floating_point() else output.detach().cpu()
    if isinstance(output, dict):
        return {k: to_cpu_structure(v) for k, v in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(to_cpu_structure(v) for v in output)
    if dataclasses.is_dataclass(output):
        return dataclasses.replace(output, **{f.name: to_cpu_structure(getattr(output, f.name))
                                              for f in dataclasses.fields(output) if f.init})
    return output


def concat(parts: list):
    """Batch outputs (structures of tensors) joined along the batch dimension."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts) if first.ndim else torch.stack(parts)
    if isinstance(first, dict):
        return {k: concat([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(concat([p[i] for p in parts]) for i in range(len(first)))
    if dataclasses.is_dataclass(first):
        return dataclasses.replace(first, **{f.name: concat([getattr(p, f.name) for p in parts])
                                             for f in dataclasses.fields(first) if f.init})
    return parts


def check_output_key(key) -> None:
    if key is not None and (isinstance(key, bool) or not isinstance(key, (str, int))):
        raise ConfigError(f"output_key={key!r}; expected None (the default rule), a key/attribute name (str) "
                          "or a tuple index (int).")


def label_key_for(model, keys=("labels", "label", "target", "y")) -> str | None:
    """The keyword of ``model.forward`` that takes the target (HF style), or None."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    for k in keys:
        if k in params:
            return k
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return keys[0]
    return None

"""``model_summary``: the layers of a model, their output shapes and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LayerInfo:
    name: str  # the module's path in the model, e.g. "net.0"
    type: str  # the class name, e.g. "Linear"
    params: int  # parameters owned directly by this module
    trainable: int
    output_shape: tuple | None = None  # from the example input's forward, when given
    depth: int = 0


@dataclass
class ModelSummary:
    """What :func:`model_summary` returns; ``str()`` is the printed table."""

    model: str
    layers: list[LayerInfo] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    size_mb: float = 0.0  # parameters and buffers, in MiB

    def rows(self) -> list[tuple[str, str, str, str]]:
        out = []
        for layer in self.layers:
            shape = "" if layer.output_shape is None else str(list(layer.output_shape))
            out.append(("  " * layer.depth + layer.name, layer.type, shape, f"{layer.params:,}"))
        return out

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params")
        rows = self.rows()
        show_shape = any(r[2] for r in rows)
        cols = [0, 1, 2, 3] if show_shape else [0, 1, 3]
        widths = {c: max(len(header[c]), *(len(r[c]) for r in rows)) if rows else len(header[c]) for c in cols}
        line = lambda r: "  ".join(r[c].rjust(widths[c]) if c == 3 else r[c].ljust(widths[c]) for c in cols)  # noqa: E731
        rule = "-" * len(line(header))
        body = [f"Model: {self.model}", rule, line(header), rule, *(line(r) for r in rows), rule,
                f"Total params: {self.total_params:,}  (trainable {self.trainable_params:,}, "
                f"non-trainable {self.total_params - self.trainable_params:,})  |  size {self.size_mb:.2f} MiB"]
        return "\n".join(body)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))

    def _repr_html_(self) -> str:  # Jupyter
        from .display import summary_html

        return summary_html(self)

    def to_dict(self) -> dict:
        return {"model": self.model, "total_params": self.total_params, "trainable_params": self.trainable_params,
                "size_mb": self.size_mb, "layers": [vars(layer) for layer in self.layers]}


def _shape(out):
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return tuple(out[0].shape)
    return None


def model_summary(model: nn.Module, example_input=None, *, max_depth: int = 3) -> ModelSummary:
    """Summarise ``model``: each module (to ``max_depth`` levels), its parameters and, when an
    ``example_input`` batch is given (a tensor, a tuple of tensors or a dict of keyword
    inputs), the shape of its output from one forward pass in eval mode without gradients.

    >>> print(ft.model_summary(model, torch.zeros(1, 20)))
    """
    from .serialization import unwrap

    model = unwrap(model)
    layers: dict[str, LayerInfo] = {}
    for name, module in model.named_modules():
        depth = 0 if not name else name.count(".") + 1
        if not name or depth > max_depth:
            continue
        own = list(module.parameters(recurse=False))
        if depth == max_depth:  # collapse what lies deeper into this row
            own = list(module.parameters())
        layers[name] = LayerInfo(name=name, type=type(module).__name__, params=sum(p.numel() for p in own),
                                 trainable=sum(p.numel() for p in own if p.requires_grad), depth=depth - 1)
    # A model without submodules (e.g. a bare nn.Linear) is its own only layer.
    if not layers:
        own = list(model.parameters())
        layers[""] = LayerInfo(name="(model)", type=type(model).__name__, params=sum(p.numel() for p in own),
                               trainable=sum(p.numel() for p in own if p.requires_grad))
    if example_input is not None:
        hooks = []
        modules = dict(model.named_modules())
        for name in layers:
            module = modules[name] if name else model

            def hook(_m, _inp, out, name=name):
                if layers[name].output_shape is None:
                    layers[name].output_shape = _shape(out)

            hooks.append(module.register_forward_hook(hook))
        was_training = model.training
        model.eval()
        try:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            with torch.no_grad():
                if isinstance(example_input, dict):
                    model(**{k: v.to(device) for k, v in example_input.items()})
                elif isinstance(example_input, (tuple, list)):
                    model(*[x.to(device) for x in example_input])
                else:
                    model(example_input.to(device))
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
    params = list(model.parameters())
    size = sum(p.numel() * p.element_size() for p in params) + sum(b.numel() * b.element_size() for b in model.buffers())
    return ModelSummary(model=type(model).__name__, layers=list(layers.values()),
                        total_params=sum(p.numel() for p in params),
                        trainable_params=sum(p.numel() for p in params if p.requires_grad), size_mb=size / 2**20)

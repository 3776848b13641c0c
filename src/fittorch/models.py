"""Built-in models that can be rebuilt from a JSON spec (no code is ever loaded)."""

from __future__ import annotations

from torch import nn

from .errors import ConfigError, unknown_name

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "silu": nn.SiLU}


class MLP(nn.Sequential):
    """``in -> [Linear -> (BatchNorm) -> act -> (Dropout)] * len(hidden) -> Linear -> out``.

    ``MLP(20, [64], 2)`` is the reference experiment's 20→64→ReLU→2 network.
    """

    def __init__(self, in_features: int, hidden=(64,), out_features: int = 2, *, activation: str = "relu",
                 dropout: float = 0.0, batchnorm: bool = False):
        if activation not in ACTIVATIONS:
            raise unknown_name("activation", activation, ACTIVATIONS)
        if isinstance(hidden, int):
            hidden = [hidden]
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout}; expected a probability in [0, 1).")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.spec = {"type": "mlp", "in_features": int(in_features), "hidden": [int(h) for h in hidden],
                     "out_features": int(out_features), "activation": activation, "dropout": float(dropout),
                     "batchnorm": bool(batchnorm)}


MODEL_TYPES = {"mlp": MLP}


def build_model(spec: dict) -> nn.Module:
    """Rebuild a built-in model from its spec (as saved in ``model.json``)."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in MODEL_TYPES:
        raise unknown_name("model type", str(kind), MODEL_TYPES,
                           "Only built-in models can be rebuilt from a spec; for your own class, "
                           "create the instance and pass it to fittorch.load(path, model=...).")
    return MODEL_TYPES[kind](**spec)


def model_spec(model: nn.Module) -> dict | None:
    spec = getattr(model, "spec", None)
    return dict(spec) if isinstance(spec, dict) else None

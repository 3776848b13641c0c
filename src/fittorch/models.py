"""Built-in models that can be rebuilt from a JSON spec (no code is ever loaded)."""

from __future__ import annotations

import torch
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


ONE_HOT_MAX_LEVELS = 10  # columns with at most this many indices are one-hot; larger ones are embedded


def embedding_size(cardinality: int, one_hot_max_levels: int = ONE_HOT_MAX_LEVELS) -> int:
    """Width of a categorical column's input: 0 means one-hot, else an embedding of this size.

    The rule (fastai's, as documented in docs/data.md): one-hot up to ``one_hot_max_levels``
    indices, else ``min(50, round(1.6 * cardinality ** 0.56))``.
    """
    if cardinality <= one_hot_max_levels:
        return 0
    return int(min(50, round(1.6 * cardinality ** 0.56)))


class TabularMLP(nn.Module):
    """An :class:`MLP` over numeric inputs plus categorical columns (one-hot or learned embeddings).

    ``forward(numeric, categorical)``: ``numeric`` is float ``(n, n_numeric)``, ``categorical``
    int64 ``(n, len(cardinalities))`` of indices ``0..cardinality-1`` (as
    :class:`fittorch.tabular.TabularPreprocessor` makes them). ``embedding_dims[j]`` is column
    j's embedding width, 0 for one-hot; by default from :func:`embedding_size`.
    """

    def __init__(self, n_numeric: int, cardinalities, hidden=(64,), out_features: int = 2, *,
                 embedding_dims=None, one_hot_max_levels: int = ONE_HOT_MAX_LEVELS, column_names=None,
                 activation: str = "relu", dropout: float = 0.0, batchnorm: bool = False):
        super().__init__()
        cards = [int(c) for c in cardinalities]
        names = [str(n) for n in (column_names or [f"c{j}" for j in range(len(cards))])]
        dims = [embedding_size(c, one_hot_max_levels) for c in cards] if embedding_dims is None else \
            [int(d) for d in embedding_dims]
        if len(dims) != len(cards) or len(names) != len(cards) or any(d < 0 for d in dims) or min(cards, default=2) < 1:
            raise ConfigError(f"TabularMLP: cardinalities {cards}, embedding_dims {dims} and column_names {names} "
                              "must have one entry per categorical column, with sizes >= 0.")
        self.cardinalities, self.dims = cards, dims
        self.embeddings = nn.ModuleDict({str(j): nn.Embedding(c, d) for j, (c, d) in enumerate(zip(cards, dims)) if d})
        width = int(n_numeric) + sum(d if d else c for c, d in zip(cards, dims))
        self.mlp = MLP(width, hidden, out_features, activation=activation, dropout=dropout, batchnorm=batchnorm)
        self.spec = {"type": "tabular_mlp", "n_numeric": int(n_numeric), "cardinalities": cards,
                     "hidden": self.mlp.spec["hidden"], "out_features": int(out_features), "embedding_dims": dims,
                     "column_names": names, "activation": activation, "dropout": float(dropout),
                     "batchnorm": bool(batchnorm)}

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric]
        for j, (card, dim) in enumerate(zip(self.cardinalities, self.dims)):
            idx = categorical[:, j]
            if dim:
                parts.append(self.embeddings[str(j)](idx))
            else:
                parts.append(nn.functional.one_hot(idx, card).to(numeric.dtype))
        return self.mlp(torch.cat(parts, dim=1))


MODEL_TYPES = {"mlp": MLP, "tabular_mlp": TabularMLP}


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

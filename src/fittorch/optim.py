"""Optimizers by name; one, or several by name (``optimizer={"generator": ..., "discriminator": ...}``)."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .errors import ConfigError, unknown_name

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def _fast_impl_kwargs(cls, params, device: torch.device) -> dict:
    """Pick the fastest implementation torch offers for this optimizer and device.

    The fused kernels update every parameter in one call; torch supports them for
    Adam/AdamW/SGD on CPU and CUDA. Where ``fused`` is unsupported, ``foreach`` batches
    the per-parameter ops instead.
    """
    sig = inspect.signature(cls.__init__).parameters
    if "fused" in sig and device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params):
        return {"fused": True}
    if "foreach" in sig:
        return {"foreach": True}
    return {}


def build_optimizers(optimizer, model: nn.Module, lr: float | None, kwargs: dict | None,
                     device: torch.device) -> dict:
    """``{name: optimizer}``: ``{"default": ...}`` for one optimizer, or one per key of a dict.

    A dict maps names to optimizer instances, or to specs ``{"optimizer": "adam", "params":
    "generator", "lr": 2e-4, ...}`` where ``params`` names a submodule of the model (its
    trainable parameters) or is an iterable of parameters. No parameter may be in two.
    """
    if not isinstance(optimizer, dict):
        return {"default": build_optimizer(optimizer, model, lr, kwargs, device)}
    if not optimizer:
        raise ConfigError("optimizer={} names no optimizer; pass e.g. {'generator': ..., 'discriminator': ...}.")
    built = {}
    for name, spec in optimizer.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"optimizer names must be identifiers such as 'generator'; got {name!r}.")
        if isinstance(spec, torch.optim.Optimizer):
            built[name] = spec
            continue
        if not isinstance(spec, dict) or "params" not in spec:
            raise ConfigError(
                f"optimizer[{name!r}] is a {type(spec).__name__}; expected an optimizer instance or a spec "
                "{'optimizer': 'adam', 'params': '<submodule name>', 'lr': ...} naming the parameters it updates."
            )
        spec = dict(spec)
        params = _params_of(spec.pop("params"), model, name)
        kind = spec.pop("optimizer", "adam")
        spec_lr = spec.pop("lr", lr)
        built[name] = build_optimizer(kind, params, spec_lr, {**(kwargs or {}), **spec}, device)
    _check_disjoint(built, model)
    return built


def _params_of(params, model: nn.Module, name: str) -> list:
    if isinstance(params, str):
        names = [n for n, _ in model.named_modules() if n]
        if params not in names:
            from .errors import did_you_mean

            raise ConfigError(f"optimizer[{name!r}] params={params!r}: the model has no submodule of that name."
                              f"{did_you_mean(params, names)} Submodules: {', '.join(names[:12])}.")
        return [p for p in model.get_submodule(params).parameters() if p.requires_grad]
    return list(params)


def _check_disjoint(optimizers: dict, model: nn.Module) -> None:
    owner: dict[int, str] = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for key, opt in optimizers.items():
        for g in opt.param_groups:
            for p in g["params"]:
                if id(p) in owner and owner[id(p)] != key:
                    raise ConfigError(
                        f"Parameter {names.get(id(p), '?')} is in both optimizer {owner[id(p)]!r} and {key!r}; "
                        "each parameter may be updated by one optimizer only. Give them disjoint submodules."
                    )
                owner[id(p)] = key


def build_optimizer(optimizer, model, lr: float | None, kwargs: dict | None, device: torch.device):
    """Resolve ``optimizer`` (a name, an instance, or a factory ``params -> optimizer``) for
    ``model``'s trainable parameters (or a list of parameters)."""
    kwargs = dict(kwargs or {})
    params = ([p for p in model.parameters() if p.requires_grad] if isinstance(model, nn.Module)
              else list(model))
    if isinstance(optimizer, torch.optim.Optimizer):
        if lr is not None or kwargs:
            given = ", ".join([f"lr={lr}"] * (lr is not None) + [f"optimizer_kwargs={kwargs}"] * bool(kwargs))
            raise ConfigError(
                f"optimizer is a {type(optimizer).__name__} instance (lr={optimizer.param_groups[0].get('lr')}), "
                f"and {given} was also given; an instance keeps its own settings, so it would be ignored. "
                f"Either pass optimizer='{type(optimizer).__name__.lower()}' with lr=..., or build the "
                "instance with the lr you want and leave lr out.")
        return optimizer
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in OPTIMIZERS:
            raise unknown_name("optimizer", optimizer, OPTIMIZERS,
                               "Or pass a torch.optim.Optimizer instance or a factory(params) -> optimizer.")
        cls = OPTIMIZERS[key]
        if lr is not None:
            kwargs["lr"] = lr
        elif key == "sgd":
            kwargs.setdefault("lr", 0.01)
        if key == "sgd":
            kwargs.setdefault("momentum", 0.9)
        valid = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
        bad = [k for k in kwargs if k not in valid]
        if bad:
            raise unknown_name(f"argument for optimizer '{key}'", bad[0], valid)
        if "fused" not in kwargs and "foreach" not in kwargs:
            kwargs.update(_fast_impl_kwargs(cls, params, device))
        try:
            return cls(params, **kwargs)
        except (RuntimeError, ValueError) as exc:
            if kwargs.pop("fused", None):  # a dtype/device the fused kernel lacks: fall back quietly
                return cls(params, **kwargs)
            raise ConfigError(f"Could not build optimizer '{key}' with {kwargs}: {exc}") from None
    if callable(optimizer):
        opt = optimizer(params, lr=lr, **kwargs) if lr is not None else optimizer(params, **kwargs)
        if not isinstance(opt, torch.optim.Optimizer):
            raise ConfigError(
                f"The optimizer factory {optimizer!r} returned a {type(opt).__name__}, "
                "expected a torch.optim.Optimizer."
            )
        return opt
    raise ConfigError(
        f"optimizer={optimizer!r} is a {type(optimizer).__name__}; expected a name such as 'adam', "
        "a torch.optim.Optimizer instance, a factory(params) -> optimizer, or a dict of them by name "
        "(several optimizers, used from a custom Step)."
    )

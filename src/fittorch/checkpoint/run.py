"""A trainer's whole run state <-> a checkpoint directory.

The run state is everything ``fit`` needs to continue exactly where it stopped: weights,
optimizer / scheduler / grad-scaler state, ``TrainState`` (position, history), each
callback's ``state_dict()``, every RNG state, the current epoch's batch losses, the
gradients of an unfinished accumulation window, and the settings that must not change.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from .._version import __version__
from .. import schemas
from ..errors import CheckpointError, ConfigError
from ..loop import stack_losses
from . import store
from .flatten import flatten, unflatten


class DamagedState(CheckpointError):
    """A checkpoint's state parses but does not fit what it describes: skipped like a bad hash."""


class NonFiniteWeights(CheckpointError):
    """The weights hold NaN or inf: such a checkpoint is never written."""



# Parts of the run state that differ between DDP ranks (saved for each rank).
RANK_LOCAL = ("rng", "epoch_losses", "grads")
# Settings whose change makes a resume wrong: refused, naming the difference.
REFUSE = ("batch_size", "world_size", "accumulate_steps", "optimizer")
# Settings whose change can only change bits: a warning.
WARN = ("torch_version", "num_threads", "seed", "shuffle", "drop_last", "precision", "n_train", "device")


# -- the run state -------------------------------------------------------------------------------
def callback_keys(callbacks) -> list[tuple[str, object]]:
    """A stable key per callback: its class name, with ``#2``, ``#3`` for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for cb in callbacks:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append((name if seen[name] == 1 else f"{name}#{seen[name]}", cb))
    return keys


def run_config(trainer) -> dict:
    from ..serialization import unwrap

    fit_args = getattr(trainer, "fit_params", None) or {}
    return {
        "fittorch_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "num_threads": torch.get_num_threads(),
        "device": trainer.device.type,
        "model_class": f"{type(unwrap(trainer.model)).__module__}.{type(unwrap(trainer.model)).__qualname__}",
        "parameters": {k: list(v.shape) for k, v in unwrap(trainer.model).state_dict().items()},
        "optimizer": _optimizer_names(trainer),
        "loss": getattr(trainer.loss_info, "name", None),
        "seed": trainer.seed,
        "precision": trainer.precision,
        "accumulate_steps": trainer.accumulate_steps,
        "world_size": trainer.dist.world_size,
        "batch_size": fit_args.get("batch_size"),
        "shuffle": fit_args.get("shuffle"),
        "drop_last": fit_args.get("drop_last"),
        "n_train": fit_args.get("n_train"),
        "run_config": getattr(trainer, "run_config", None),  # e.g. the CLI's resolved config
    }


def run_state(trainer, *, include_model: bool = True) -> dict:
    """The whole run as a tree of plain data and tensors (see :func:`load_run_state`)."""
    from ..seeding import get_rng_state
    from ..serialization import unwrap

    scaler = trainer.scaler
    k = trainer.accumulate_steps
    mid_window = k > 1 and trainer.state.batch_in_epoch % k != 0
    params = _all_params(trainer)
    several = len(trainer.optimizers) > 1
    state = {
        "train_state": trainer.state.state_dict(),
        # One optimizer: its state (the format of earlier checkpoints); several: one per name.
        "optimizer": None if several else trainer.optimizer.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in trainer.optimizers.items()} if several else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "callbacks": {key: cb.state_dict() for key, cb in callback_keys(trainer.callbacks)},
        "rng": get_rng_state(),
        "epoch_losses": stack_losses(trainer.epoch_losses) if trainer.epoch_losses else None,
        # Gradients summed so far in an unfinished accumulation window (only mid-window).
        "grads": [p.grad for p in params] if mid_window else None,
        "config": run_config(trainer),
    }
    if include_model:
        state["model"] = unwrap(trainer.model).state_dict()
    return state


def load_run_state(trainer, state: dict, *, source: str = "state") -> None:
    """Restore what :func:`run_state` captured. RNG states are restored last."""
    from ..seeding import set_rng_state
    from ..serialization import load_into, unwrap

    if state.get("ranks"):  # a DDP checkpoint: this rank's own RNG states, batch losses, gradients
        state = dict(state, **state["ranks"][trainer.dist.rank])
    if state.get("model") is not None:
        load_into(unwrap(trainer.model), state["model"], source=source)
    saved = state.get("optimizers") or {"default": state.get("optimizer")}
    if sorted(saved) != sorted(trainer.optimizers):
        raise CheckpointError(f"{source} holds the state of optimizer(s) {sorted(saved)}, but this trainer has "
                              f"{sorted(trainer.optimizers)}. Use the optimizers the run was started with.")
    for name, opt in trainer.optimizers.items():
        try:
            opt.load_state_dict(saved[name])
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"The state of optimizer {name!r} in {source} does not fit this "
                                  f"{type(opt).__name__} ({exc}). Use the optimizer and parameter groups the run "
                                  "was started with.") from None
    if state.get("scaler") is not None and trainer.scaler is not None:
        trainer.scaler.load_state_dict(state["scaler"])
    saved_cbs = state.get("callbacks") or {}
    for key, cb in callback_keys(trainer.callbacks):
        if key in saved_cbs:
            cb.load_state_dict(saved_cbs[key])
        elif cb.state_dict():
            store.warn(f"{source} has no state for callback {key}; it starts fresh.")
    trainer.state.load_state_dict(state["train_state"])
    losses = state.get("epoch_losses")
    trainer.epoch_losses[:] = [] if losses is None else list(losses.to(trainer.device).unbind(0))
    if state.get("grads") is not None:
        params = _all_params(trainer)
        for p, g in zip(params, state["grads"]):
            p.grad = None if g is None else g.to(device=p.device, dtype=p.dtype)
    set_rng_state(state["rng"])


def _all_params(trainer) -> list:
    return [p for o in trainer.optimizers.values() for g in o.param_groups for p in g["params"]]


def _optimizer_names(trainer):
    """The optimizer class (one), or ``{name: class}`` (several): a change is refused on resume."""
    if len(trainer.optimizers) == 1:
        return type(trainer.optimizer).__name__
    return {k: type(o).__name__ for k, o in trainer.optimizers.items()}


# -- compatibility --------------------------------------------------------------------------------
def check_compatible(saved: dict, current: dict, source: str) -> None:
    """Refuse a resume whose settings would make it wrong; warn where only bits may differ."""
    problems = []
    old_p, new_p = saved.get("parameters") or {}, current.get("parameters") or {}
    if old_p and old_p != new_p:
        shapes = [f"{k}: {old_p[k]} -> {new_p[k]}" for k in old_p if k in new_p and old_p[k] != new_p[k]]
        missing = [k for k in old_p if k not in new_p]
        extra = [k for k in new_p if k not in old_p]
        detail = "; ".join(shapes[:4] + [f"missing now: {', '.join(missing[:4])}"] * bool(missing)
                           + [f"new: {', '.join(extra[:4])}"] * bool(extra))
        problems.append(f"model shape ({detail})")
    for key in REFUSE:
        if saved.get(key) is not None and current.get(key) is not None and saved[key] != current[key]:
            problems.append(f"{key} {saved[key]!r} -> {current[key]!r}")
    if problems:
        raise CheckpointError(
            f"Cannot resume from {source}: the run was started with different settings: {'; '.join(problems)}. "
            "Resume with the settings the run was started with, or start a new run in another checkpoint_dir."
        )
    changed = [f"{key} {saved[key]!r} -> {current[key]!r}" for key in WARN
               if saved.get(key) is not None and current.get(key) is not None and saved[key] != current[key]]
    if changed:
        store.warn(f"Resuming from {source} with changed settings ({'; '.join(changed)}): the run continues, "
                   "but its bits may differ from an uninterrupted run.")


def check_optimizer_state(saved, optimizer, source: str) -> None:
    """The saved optimizer state has this optimizer's groups and settings, each of the same kind.

    ``load_state_dict`` copies any group dict as it is; a damaged one would only fail at the next step.
    """
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups) \
            or not isinstance(saved.get("state"), dict):
        raise DamagedState(f"The optimizer state in {source} does not have this optimizer's "
                              f"{len(optimizer.param_groups)} parameter group(s); the checkpoint is damaged.")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for key, per_param in saved["state"].items():
        if not isinstance(key, int) or not 0 <= key < len(params) or not isinstance(per_param, dict):
            raise DamagedState(f"The optimizer state in {source} holds an entry {str(key)[:40]!r} that is not one "
                                  f"of the {len(params)} parameters; the checkpoint is damaged.")
        for name, value in per_param.items():
            shape_ok = isinstance(value, torch.Tensor) and (value.numel() == 1 or value.shape == params[key].shape)
            if not (shape_ok or value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))):
                shown = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise DamagedState(f"The optimizer state in {source}: parameter {key}'s {str(name)[:40]!r} is "
                                      f"{shown}, not a tensor of shape {tuple(params[key].shape)}; the checkpoint "
                                      "is damaged.")
    for i, (old, new) in enumerate(zip(groups, optimizer.param_groups)):
        if not isinstance(old, dict):
            raise DamagedState(f"The optimizer state in {source}: parameter group {i} is not a mapping.")
        for key, value in new.items():
            if key == "params":
                continue
            number = isinstance(value, (int, float)) and value is not None
            seen = old.get(key, ...)
            if seen is ... or (number and (not isinstance(seen, (int, float)) or seen != seen)) \
                    or (isinstance(value, (tuple, list)) and (not isinstance(seen, (tuple, list))
                                                             or len(seen) != len(value))):
                raise DamagedState(f"The optimizer state in {source}: parameter group {i} has "
                                      f"{key}={str(seen)[:40] if seen is not ... else 'nothing'}; expected a value "
                                      f"like {value!r}. The checkpoint is damaged.")


# -- saving and loading ------------------------------------------------------------------------------
def weights_finite(model, losses: list | None = None) -> bool:
    """One host sync: are all floating-point parameters and buffers (and ``losses``) finite?"""
    from ..callbacks.guard import all_finite

    extra = [stack_losses(losses)] if losses else []  # the epoch's batch losses: a step gone bad since the last check
    return all_finite(list(model.parameters()) + list(model.buffers()) + extra)


def save_checkpoint(trainer, directory: str | os.PathLike, *, monitor: dict | None = None) -> Path | None:
    """Write the trainer's full run state as a new checkpoint in ``directory``.

    Only the main process writes; every process waits at a barrier. Returns the
    checkpoint's path (None on other ranks). Non-finite weights are never saved.
    """
    path = None
    # Under DDP, what differs between ranks is gathered so rank 0 writes it for each rank.
    ranks = trainer.dist.gather_rank_states({k: v for k, v in run_state(trainer, include_model=False).items()
                                             if k in RANK_LOCAL}) if trainer.dist.enabled else None
    try:
        if trainer.dist.is_main:
            # skip mode leaves the skipped steps' losses non-finite on purpose; its weights never took them
            losses = trainer.epoch_losses if getattr(trainer, "nonfinite", "stop") != "skip" else None
            if not weights_finite(trainer.model, losses):
                raise NonFiniteWeights(
                    f"Not saving a checkpoint at epoch {trainer.state.epoch}, batch {trainer.state.batch_in_epoch}: "
                    "the model's weights or this epoch's losses are not finite (NaN or inf). The previous "
                    "checkpoint is kept."
                )
            path = _write(trainer, Path(directory), monitor, ranks)
    finally:
        trainer.dist.barrier()
    return path


def _write(trainer, directory: Path, monitor: dict | None, ranks: list | None = None) -> Path:
    from safetensors.torch import save as st_save

    run = run_state(trainer, include_model=False)
    if ranks is not None:
        run["ranks"] = ranks  # DDP: each rank's RNG states, batch losses and window gradients
    tree, tensors = flatten(run, "run")
    state = trainer.state
    name = store.checkpoint_name(state.epoch, state.batch_in_epoch)

    def write_files(tmp: Path) -> None:
        trainer.save(tmp, metadata={"checkpoint": name})  # model.safetensors + model.json
        store.write_bytes(tmp / "state.safetensors", st_save(tensors, metadata={"format": "pt"}))
        store.write_bytes(tmp / "state.json", json.dumps(tree).encode())

    extra = {"epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch, "global_step": state.global_step,
             "monitor": monitor, "fittorch_version": __version__, "torch_version": torch.__version__}
    return store.write_checkpoint(directory, name, write_files, extra)


class Checkpoint:
    """A loaded, hash-verified checkpoint: ``.path``, ``.manifest``, ``.model_state``, ``.state``."""

    def __init__(self, path: Path, manifest: dict, model_state: dict, state: dict):
        self.path, self.manifest, self.model_state, self.state = path, manifest, model_state, state

    @property
    def config(self) -> dict:
        return self.state.get("config") or {}

    def __repr__(self) -> str:
        m = self.manifest
        return f"Checkpoint({self.path}, epoch={m.get('epoch')}, batch_in_epoch={m.get('batch_in_epoch')})"


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Read and verify one checkpoint directory. Never unpickles anything.

    Every file is checked against the manifest's SHA-256 before it is parsed; a mismatch
    raises :class:`CheckpointError` naming the file, both hashes and the previous checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    manifest = store.read_manifest(path)
    loaded = {}
    for name in ("model.safetensors", "state.safetensors", "state.json"):
        data = store.read_file(path / name, manifest)
        if name.endswith(".json"):  # parsed into a schema: bounded nesting, a train state with sane numbers
            loaded[name], _ = schemas.parse_json(data, schemas.StateJson, what=str(path / name), allow_nan=True,
                                                 error=CheckpointError, hint=store._previous_hint(path))
            continue
        try:
            loaded[name] = st_load(data)
        except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path / name} could not be parsed ({exc}) although its hash matches the "
                                  f"manifest; it was not written by fittorch. {store._previous_hint(path)}") from None
    try:
        state = unflatten(loaded["state.json"], loaded["state.safetensors"])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{path / 'state.json'} does not fit its tensors ({type(exc).__name__}: {exc}); "
                              f"the checkpoint is damaged. {store._previous_hint(path)}") from None
    model_state = loaded["model.safetensors"]
    if str(device) != "cpu":
        model_state = {k: v.to(device) for k, v in model_state.items()}
    return Checkpoint(path, manifest, model_state, state)


def find(source, checkpoint_dir) -> list[Path]:
    """Candidate checkpoints for ``source`` ("last", "auto", "best", or a path), best first."""
    if isinstance(source, str) and source in ("last", "auto", "best"):
        if checkpoint_dir is None:
            raise ConfigError(f"resume={source!r} needs a checkpoint directory: create the Trainer with "
                              "checkpoint_dir=..., or pass the checkpoint's path as resume=...")
        if source == "best":
            best = store.best_by(checkpoint_dir)
            return [best] if best is not None else []
        return list(reversed(store.list_checkpoints(checkpoint_dir)))
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"resume={source!r}: expected 'last', 'best', 'auto' or a checkpoint path.")
    p = Path(source)
    if store.position(p) is not None or (p / store.MANIFEST).exists():
        if not p.exists():
            raise CheckpointError(f"resume={str(source)!r}: no checkpoint at {p}.")
        return [p]
    for d in (p, p / "checkpoints"):
        found = store.list_checkpoints(d)
        if found:
            return list(reversed(found))
    raise CheckpointError(f"resume={str(source)!r}: {p} is neither a checkpoint nor a directory holding "
                          "checkpoints (ckpt-e*-b*/ with a manifest.json).")


def resume(trainer, source) -> bool:
    """Restore ``trainer`` from ``source``; False when ``source='auto'`` and there is none yet."""
    candidates = find(source, trainer.checkpoint_dir)
    if not candidates:
        if source == "auto":
            return False
        where = trainer.checkpoint_dir
        raise CheckpointError(
            f"resume={source!r}: there is no checkpoint in {where} to resume from. Start the run without "
            "resume, or pass resume='auto' to resume when a checkpoint exists and start fresh otherwise."
        )
    fallback = source in ("last", "auto") or (len(candidates) > 1)
    skipped: list[str] = []
    for path in candidates:
        try:
            ckpt = load_checkpoint(path, device=trainer.device)
        except CheckpointError as exc:
            if not fallback:
                raise
            skipped.append(str(exc))
            continue
        if skipped:
            store.warn(f"Skipped {len(skipped)} damaged checkpoint(s): {' | '.join(skipped)} "
                       f"Resuming from the previous good checkpoint {path} instead; the steps after it are redone.")
        check_compatible(ckpt.config, run_config(trainer), str(path))
        state = dict(ckpt.state, model=ckpt.model_state)
        try:
            saved_opts = state.get("optimizers") or {"default": state.get("optimizer")}
            for name, opt in trainer.optimizers.items():
                if name in saved_opts:
                    check_optimizer_state(saved_opts[name], opt, f"{path} (optimizer {name!r})")
            load_run_state(trainer, state, source=str(path))
        except DamagedState as exc:
            if not fallback:
                raise
            skipped.append(str(exc))
            continue
        except CheckpointError:  # settings that differ (not damage) are refused at once
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, OverflowError) as exc:
            # values that parse but cannot be restored (a garbage RNG state, a wrong-sized buffer):
            # damaged like a bad hash; the next candidate restores every part again.
            if not fallback:
                raise CheckpointError(f"{path} cannot be restored ({type(exc).__name__}: {exc}); it is damaged. "
                                      f"{store._previous_hint(path)}") from None
            skipped.append(f"{path} cannot be restored ({type(exc).__name__}: {exc})")
            continue
        trainer.checkpoint_path = path
        return True
    error = skipped[0] if skipped else ""
    raise CheckpointError(f"No intact checkpoint to resume from in {candidates[0].parent}: every one is damaged. "
                          f"The newest error: {error}")

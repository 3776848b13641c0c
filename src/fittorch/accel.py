"""Opt-in accelerations: ``compile=True`` and ``cuda_graphs=True``.

Both are off by default; each checks up front whether it can apply and, where it cannot,
says why in an :class:`AccelerationWarning` and trains eagerly instead, so a script that
asks for them still runs everywhere.

- ``compile=True`` (or a dict of ``torch.compile`` arguments): the model's forward and
  backward run through ``torch.compile``. The trainer keeps the original module for saving,
  so weights and checkpoints carry no ``_orig_mod.`` prefix.
- ``cuda_graphs=True``: the whole train step (forward, loss, backward, optimizer step) of
  full-size batches is captured once in a CUDA graph and replayed, which removes nearly all
  per-step CPU overhead. Batches of another shape (the last, partial batch) run eagerly.
"""

from __future__ import annotations

import shutil
import warnings

import torch

from .errors import ConfigError

WARMUP_STEPS = 3  # eager steps on a side stream before capture (lazy init, cuBLAS workspaces)


class AccelerationWarning(UserWarning):
    """An opt-in acceleration could not apply; training continues without it."""


def _warn(msg: str) -> None:
    warnings.warn(msg, AccelerationWarning, stacklevel=4)


def check_args(compile, cuda_graphs) -> None:
    if not isinstance(compile, (bool, dict)):
        raise ConfigError(f"compile={compile!r}; expected True/False or a dict of torch.compile arguments "
                          "such as {'mode': 'max-autotune'}.")
    if not isinstance(cuda_graphs, bool):
        raise ConfigError(f"cuda_graphs={cuda_graphs!r}; expected True or False.")


def accelerate(trainer, *, compile=False, cuda_graphs=False):
    """``(model the step runs, CudaGraphStep or None)`` for the requested accelerations (once, at construction)."""
    check_args(compile, cuda_graphs)
    model = trainer.model
    if compile:
        model = compile_model(trainer.model, trainer.device, {} if compile is True else compile)
    return model, CudaGraphStep.create(trainer) if cuda_graphs else None


def compile_model(model: torch.nn.Module, device: torch.device, options: dict):
    """``torch.compile(model, **options)``, or ``model`` itself with a warning where it can't work."""
    reason = compile_unavailable(device, options)
    if reason:
        _warn(f"compile=True was ignored: {reason} Training runs eagerly (same results, no compile speed-up).")
        return model
    return torch.compile(model, **options)


def compile_unavailable(device: torch.device, options: dict) -> str | None:
    """Why torch.compile can't be used here, or None."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it needs torch >= 2.0)."
    try:
        import torch._dynamo as dynamo

        if not dynamo.is_dynamo_supported():
            import sys

            return f"torch.compile does not support Python {sys.version.split()[0]} with torch {torch.__version__}."
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return f"torch._dynamo could not be imported ({exc})."
    backend = options.get("backend", "inductor")
    if backend == "inductor" and device.type == "cpu":
        compilers = ("c++", "g++", "clang++", "cl")
        if not any(shutil.which(c) for c in compilers):
            return ("the inductor backend needs a C++ compiler on the CPU, and none of "
                    f"{', '.join(compilers)} is on PATH. Install one (e.g. apt install g++), or pass "
                    "compile={'backend': 'aot_eager'}.")
    return None


class CudaGraphStep:
    """The train step of one batch shape, captured in a CUDA graph and replayed.

    The first full-size batches run eagerly on a side stream (real steps, they count), then
    the step is captured; later batches are copied into the graph's static input tensors
    and the graph is replayed. A change of learning rate (a schedule) re-captures, because
    the optimizer's hyper-parameters are baked into the graph.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.disabled = False
        self.checked = False
        self.shape_key = None  # (input shape, dtype, target shape, dtype) of the captured batch
        self.graph = None
        self.lr_key = None
        self.static_x = self.static_y = self.static_loss = None
        self.warm = 0
        self.replays = 0
        self.eager_steps = 0

    @classmethod
    def create(cls, trainer) -> CudaGraphStep | None:
        reason = None
        if trainer.device.type != "cuda":
            reason = f"CUDA graphs need a CUDA device (device is {trainer.device})."
        elif trainer.precision != "fp32":
            reason = (f"precision={trainer.precision!r}: loss scaling and autocast caches are not captured; "
                      "use precision='fp32' with cuda_graphs=True.")
        elif trainer.accumulate_steps != 1:
            reason = f"accumulate_steps={trainer.accumulate_steps}: only a whole step (one batch) is captured."
        elif len(trainer.optimizers) > 1:
            reason = "several optimizers: only the default one-optimizer step is captured."
        if reason:
            _warn(f"cuda_graphs=True was ignored: {reason} Training runs eagerly.")
            return None
        opt = trainer.optimizer
        if opt.state:
            _warn("cuda_graphs=True was ignored: the optimizer already has state; pass a fresh optimizer.")
            return None
        for group in opt.param_groups:
            if "capturable" in group:
                group["capturable"] = True  # step counters live on the GPU, so step() can be captured
        opt._warned_capturable_if_run_uncaptured = True  # eager warm-up/partial steps are intended
        return cls(opt)

    # -- called from Step.train_step -------------------------------------------------------
    def step(self, parts, batch):
        """Replay (or warm up, or capture) for this batch; None means "run the eager step"."""
        if self.disabled:
            return None
        if not self.checked:
            self.checked = True
            reason = self._unsupported(parts, batch)
            if reason:
                self.disabled = True
                _warn(f"cuda_graphs=True was ignored: {reason} Training runs eagerly.")
                return None
        inputs, target = batch
        x = inputs[0]
        key = (tuple(x.shape), x.dtype, tuple(target.shape), target.dtype)
        if self.shape_key is None:
            self.shape_key = key
        elif key != self.shape_key:
            self.eager_steps += 1  # e.g. the last, partial batch: runs eagerly, once per epoch
            return None
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            return self._eager_on_side_stream(parts, batch)
        lr_key = tuple(g["lr"] for g in self.optimizer.param_groups)
        if self.graph is None or lr_key != self.lr_key:
            self._capture(parts, x, target)
            self.lr_key = lr_key
        self.static_x.copy_(x, non_blocking=True)
        self.static_y.copy_(target, non_blocking=True)
        self.graph.replay()
        self.replays += 1
        return self.static_loss.detach().clone()

    def _unsupported(self, parts, batch) -> str | None:
        from .step import Step, runs_model_parts

        if runs_model_parts(parts) or type(parts).compute_loss is not Step.compute_loss:
            return f"a custom step ({type(parts).__name__}) may run Python the graph cannot capture."
        if not isinstance(batch[1], torch.Tensor) or parts.loss_fn is None or parts.structured_loss:
            return "only a model(x) -> tensor step with a named loss and a target tensor is captured."
        if parts.kwargs_input:
            return "the model takes keyword inputs (a dict); capture supports model(x) only."
        if parts.after_backward:
            names = ", ".join(type(cb).__name__ for cb in parts.after_backward)
            return f"callbacks with on_after_backward ({names}) run Python between backward and step."
        if getattr(parts, "skip_step", None) is not None:
            return "nonfinite='skip' decides per step on the host."
        if parts.no_sync is not None:
            return "distributed (DDP) training is not captured."
        return None

    def _eager_on_side_stream(self, parts, batch):
        parts.last_output = None
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            output = parts.forward(batch)
            loss = parts.compute_loss(batch, output)
            parts.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            parts.optimizer.step()
        torch.cuda.current_stream().wait_stream(stream)
        return loss.detach()

    def _capture(self, parts, x, target) -> None:
        self.graph = None
        parts.last_output = None  # an eager step's output keeps its autograd graph (default stream)
        self.static_x = x.detach().clone()
        self.static_y = target.detach().clone()
        parts.optimizer.zero_grad(set_to_none=True)  # grads are allocated from the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = parts.model(self.static_x)
            loss = parts.loss_fn(output, self.static_y)
            loss.backward()
            parts.optimizer.step()
        # Detached: keeping the captured autograd graph alive would keep its AccumulateGrad nodes
        # (made on the capture stream), and the eager steps of partial batches would reuse them.
        self.static_loss = loss.detach()
        self.graph = graph

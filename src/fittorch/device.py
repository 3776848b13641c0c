"""Choosing the device and the CPU thread count."""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is checked."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device torch knows ({exc}). "
            "Use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was asked for, but CUDA is not available on this machine "
            f"(torch {torch.__version__}). Use device='auto' or 'cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s). "
            "Use an index below that, or device='cuda'."
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device={device!r} was asked for, but MPS is not available. Use 'auto' or 'cpu'.")
    return dev


# Models this small are bound by per-op overhead; a second intra-op thread only adds
# synchronisation cost (measured on the reference experiment: 1 thread is ~20% faster).
SMALL_MODEL_PARAMS = 1_000_000


def auto_num_threads(model: torch.nn.Module, device: torch.device) -> int | None:
    """The intra-op thread count to use for this fit, or ``None`` to leave torch's."""
    if device.type != "cpu":
        return None
    n_params = sum(p.numel() for p in model.parameters())
    return 1 if n_params <= SMALL_MODEL_PARAMS else None


@contextlib.contextmanager
def torch_threads(num_threads, model: torch.nn.Module, device: torch.device):
    """Run a block with ``num_threads`` intra-op threads (``"auto"``: :func:`auto_num_threads`;
    None: torch's own), and put the previous count back afterwards."""
    n = auto_num_threads(model, device) if num_threads == "auto" else num_threads
    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n is not None and n != previous:
            torch.set_num_threads(previous)

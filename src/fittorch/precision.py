"""Mixed precision: the autocast context of a step and the fp16 loss scaler.

- ``"fp32"``: no autocast, no scaler.
- ``"bf16"``: ``torch.autocast`` with bfloat16 (CPU and CUDA); bf16 keeps fp32's exponent
  range, so no loss scaling is needed.
- ``"fp16"``: ``torch.autocast`` with float16 and a ``GradScaler`` (CUDA only), whose scale
  the step updates once per optimizer step (see ``Step.update_scale``).
"""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision='fp16' needs CUDA (device is {device}). Use 'bf16' on the CPU, or 'fp32'.")


def autocast_factory(precision: str, device: torch.device):
    """A zero-argument callable giving the step's autocast context (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    device_type = device.type
    return lambda: torch.autocast(device_type=device_type, dtype=dtype)


def make_scaler(precision: str):
    """The fp16 loss scaler, or None."""
    return torch.amp.GradScaler("cuda") if precision == "fp16" else None

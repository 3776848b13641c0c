"""``fittorch doctor``: catch a broken training setup in seconds, before hours of compute.

>>> import fittorch as ft
>>> report = ft.doctor(model, (X_train, y_train), val=(X_val, y_val), loss="cross_entropy", lr=1e-3)
>>> print(report)            # the checklist
>>> report.ok                # False when any check failed
>>> report["overfit_batch"]  # one CheckResult: status, summary, evidence, fix

Every check works on copies of the model, starting from its initial weights; the model
passed in is never changed.
"""

from __future__ import annotations

import time
from pathlib import Path

from .report import FAIL, PASS, SKIP, WARN, CheckResult, DoctorReport

__all__ = ["doctor", "DoctorReport", "CheckResult", "CHECKS", "from_config", "PASS", "WARN", "FAIL", "SKIP"]

# id -> title, in report order. Groups ("data") select all their checks.
CHECKS = {
    "data.finite": "finite values",
    "data.constant": "constant features",
    "data.scale": "feature scales",
    "data.balance": "class balance",
    "data.leakage": "train/val leakage",
    "data.target": "targets vs loss",
    "init_loss": "initial loss",
    "grad_flow": "gradient flow",
    "overfit_batch": "overfit one batch",
    "lr_range": "LR range test",
    "learning_signal": "learning signal",
    "mode": "train/eval mode",
    "determinism": "determinism",
    "gradcheck": "gradcheck (float64)",
}
# Checks that run the model need the data to be usable first.
_NEEDS_DATA = ("init_loss", "grad_flow", "overfit_batch", "lr_range", "learning_signal", "mode", "determinism", "gradcheck")


def doctor(model, train, val=None, loss="cross_entropy", *, optimizer="adam", lr: float | None = None,
           optimizer_kwargs: dict | None = None, batch_size: int = 32, seed: int = 0, device="auto",
           standardize: bool | None = None, gradcheck: bool = False, checks=None, out: str | Path | None = None,
           max_rows: int = 100_000, labels=None) -> DoctorReport:
    """Examine a training setup and return a :class:`DoctorReport` (pass / warn / fail per check).

    Args:
        model: the ``nn.Module`` as it would start training (it is copied, never changed).
        train, val: ``(X, y)`` pairs, Datasets or DataLoaders, as for ``Trainer.fit``.
        loss, optimizer, lr, optimizer_kwargs, batch_size, seed, device: as for :class:`fittorch.Trainer`.
        standardize: True when the training pipeline standardizes the features (the doctor then does
            the same before running the model); False/None when the data is used as given.
        gradcheck: also run ``torch.autograd.gradcheck`` in float64 (for custom autograd Functions).
        checks: run only these check ids or groups (e.g. ``["data", "init_loss"]``); default all.
        out: a folder for ``lr_range.png``; None writes no file.
        max_rows: Datasets/DataLoaders are read up to this many samples.
        labels: the names of the classes (multilabel: of the label columns), in index order, for
            the balance check's messages; ``fittorch doctor CONFIG`` passes the data's own names.
    """
    from ..errors import DataError, DataTypeError, ModelError
    from .setup import DoctorSetup

    started = time.perf_counter()
    selected = _select(checks)
    try:
        setup = DoctorSetup.build(model, train, val, loss=loss, optimizer=optimizer, lr=lr,
                                  optimizer_kwargs=optimizer_kwargs, batch_size=batch_size, seed=seed, device=device,
                                  standardize=standardize, max_rows=max_rows, labels=labels)
    except (DataError, DataTypeError, ModelError) as exc:
        result = CheckResult("setup", "setup", FAIL, str(exc).splitlines()[0], {"error": str(exc)},
                             "Fix the data or model as the message says; the other checks need it first.")
        skipped = [CheckResult(i, CHECKS[i], SKIP, "not run: the setup failed") for i in selected]
        return DoctorReport([result] + skipped, {}, time.perf_counter() - started)

    results: list[CheckResult] = []
    for check_id in selected:
        blocker = _blocker(check_id, results)
        if blocker:
            results.append(CheckResult(check_id, CHECKS[check_id], SKIP, f"not run: '{blocker}' failed"))
            continue
        t0 = time.perf_counter()
        result = _run_one(check_id, setup, gradcheck=gradcheck, out=out)
        result.seconds = time.perf_counter() - t0
        results.append(result)
    return DoctorReport(results, setup.describe(), time.perf_counter() - started)


def _select(checks) -> list[str]:
    if checks is None:
        return list(CHECKS)
    from ..errors import unknown_name

    if isinstance(checks, str):
        checks = [c.strip() for c in checks.split(",") if c.strip()]
    chosen = []
    for name in checks:
        ids = [i for i in CHECKS if i == name or i.startswith(name + ".")]
        if not ids:
            raise unknown_name("doctor check", name, list(CHECKS) + ["data"])
        chosen.extend(i for i in ids if i not in chosen)
    if any(c in _NEEDS_DATA for c in chosen) and "data.target" not in chosen:
        chosen.insert(0, "data.target")  # sets the output kind the model checks use
    return [i for i in CHECKS if i in chosen]


def _blocker(check_id: str, results: list[CheckResult]) -> str | None:
    if check_id not in _NEEDS_DATA:
        return None
    for r in results:
        if r.id in ("data.finite", "data.target") and r.status == FAIL:
            return r.title
    return None


def _run_one(check_id: str, setup, *, gradcheck: bool, out) -> CheckResult:
    from ..errors import FittorchError
    from . import data_checks, lr_range, model_checks, train_checks

    table = {
        "data.finite": data_checks.check_finite,
        "data.constant": data_checks.check_constant,
        "data.scale": data_checks.check_scale,
        "data.balance": data_checks.check_balance,
        "data.leakage": data_checks.check_leakage,
        "data.target": data_checks.check_target,
        "init_loss": model_checks.check_initial_loss,
        "grad_flow": model_checks.check_grad_flow,
        "overfit_batch": train_checks.check_overfit_batch,
        "lr_range": lambda s: lr_range.check_lr_range(s, out=out),
        "learning_signal": train_checks.check_learning_signal,
        "mode": model_checks.check_mode,
        "determinism": train_checks.check_determinism,
        "gradcheck": lambda s: model_checks.check_gradcheck(s, gradcheck),
    }
    try:
        return table[check_id](setup)
    except (FittorchError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        # A check that cannot run is itself a finding: report it instead of hiding the others.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CheckResult(check_id, CHECKS[check_id], FAIL, f"the check could not run: {type(exc).__name__}: {message}",
                           {"error": str(exc)[:2000]}, "Fix the error above; run the model once by hand to see it.")


def from_config(path, overrides=()) -> dict:
    """The ``doctor()`` arguments for a fittorch YAML config (see :mod:`fittorch.doctor.config`)."""
    from .config import from_config as _from_config

    return _from_config(path, overrides)

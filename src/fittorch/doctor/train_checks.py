"""Checks that train a copy of the model briefly: overfit one batch, learning signal, determinism."""

from __future__ import annotations

import math

import torch

from ..callbacks.base import Callback
from ..task import has_class_labels
from .data_checks import majority
from .report import FAIL, PASS, SKIP, CheckResult

OVERFIT_ROWS = 32  # the single batch
OVERFIT_STEPS = 300  # at most this many steps on it
OVERFIT_LOSS = 0.02  # "near zero"
SIGNAL_STEPS = 200  # about this many steps for the learning-signal run (whole epochs, 1..5)
SIGNAL_VAL_ROWS = 10_000  # validation rows scored by it, at most
DETERMINISM_STEPS = 8


class _KeepLosses(Callback):
    """Collects every step's loss (device tensors; read once at the end)."""

    def __init__(self, limit: int | None = None):
        self.losses, self.limit = [], limit

    def on_train_batch_end(self, trainer, loss) -> None:
        self.losses.append(loss)
        if self.limit is not None and len(self.losses) >= self.limit:
            trainer.state.should_stop = True


def accuracy(setup, model, src) -> float | None:
    """Accuracy of ``model`` on ``src`` (eval mode, no grad); None when the task is not classification.

    Computed here rather than with torchmetrics, so the doctor does not pay for its import.
    """
    kind = setup.output_kind
    if kind is None or not has_class_labels(kind.task) or src.target is None:
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            inputs, target = setup.on_device(src)
            out = setup.forward(model, inputs)
    finally:
        model.train(was_training)
    if kind.task == "multiclass":
        pred = out.argmax(1)
    else:
        pred = (out > (0.0 if kind.logits else 0.5)).to(target.dtype)
    return float((pred == target).float().mean())


class _OverfitWatch(Callback):
    """After each step (one epoch = the one batch): the batch loss and accuracy; stop when memorized."""

    def __init__(self, setup, batch, near_zero):
        self.setup, self.batch, self.near_zero, self.rows = setup, batch, near_zero, []

    def on_epoch_end(self, trainer, row) -> None:
        acc = accuracy(self.setup, trainer.model, self.batch)
        self.rows.append({**row, "accuracy": acc})
        if (acc is not None and acc >= 1.0) or row["val_loss"] <= self.near_zero:
            trainer.state.should_stop = True
            trainer.state.stop_reason = "doctor: batch memorized"


def check_overfit_batch(setup) -> CheckResult:
    title = "overfit one batch"
    batch = setup.sample(min(setup.batch_size, OVERFIT_ROWS), seed_offset=1)
    pair = _pair(batch)
    near_zero = _near_zero(setup, batch)
    watch = _OverfitWatch(setup, batch, near_zero)
    trainer = setup.trainer(callbacks=[watch])
    trainer.fit(pair, val=pair, epochs=OVERFIT_STEPS, batch_size=len(batch), shuffle=False)
    rows = watch.rows
    first, last = rows[0], rows[-1]
    steps = len(rows)
    ev = {"rows": len(batch), "steps": steps, "max_steps": OVERFIT_STEPS, "lr": setup.lr,
          "loss_first_step": first["train_loss"], "loss_end": last["val_loss"], "batch_accuracy": last["accuracy"]}
    reached = (last["accuracy"] is not None and last["accuracy"] >= 1.0) or last["val_loss"] <= near_zero
    acc = f", batch accuracy {last['accuracy']:.0%}" if last["accuracy"] is not None else ""
    if reached:
        return CheckResult("overfit_batch", title, PASS,
                           f"{len(batch)} rows memorized in {steps} steps: loss {first['train_loss']:.3g} -> "
                           f"{last['val_loss']:.3g}{acc}", ev)
    end = last["val_loss"]
    if not math.isfinite(end) or end > first["train_loss"] * 1.02:
        cause, fix = "the loss rose", (f"Lower the learning rate (lr={setup.lr:g}); see the LR range test. If it "
                                       "still fails, check the loss fits the outputs (a softmax before "
                                       "cross_entropy caps how low it can go).")
    elif end > 0.9 * first["train_loss"]:
        cause, fix = "the loss barely moved", (f"Raise the learning rate (lr={setup.lr:g}) or check that gradients "
                                              "flow (see gradient flow); a model that cannot move its loss on "
                                              f"{len(batch)} rows will not learn the full data.")
    else:
        cause, fix = "the loss fell but not to zero", ("Give the model more capacity, train it longer, or check "
                                                      "that each label belongs to its row (a label bug or a "
                                                      "softmax before the loss caps how low the loss can go).")
    return CheckResult("overfit_batch", title, FAIL,
                       f"could not memorize {len(batch)} rows in {steps} steps: {cause} "
                       f"({first['train_loss']:.3g} -> {end:.3g}{acc})", ev, fix)


def _near_zero(setup, batch) -> float:
    if setup.loss_info is not None and setup.loss_info.task == "regression":
        y = batch.target.float()
        var = float(((y - y.mean(0)) ** 2).mean()) if len(y) > 1 else 1.0
        return max(0.01 * var, 1e-6)
    return OVERFIT_LOSS


def check_learning_signal(setup) -> CheckResult:
    title = "learning signal"
    if setup.val is None:
        return CheckResult("learning_signal", title, SKIP, "no validation data given (pass val=...)")
    # Big data: a random subset of about SIGNAL_STEPS batches, so the check stays in seconds.
    train_src = setup.train if len(setup.train) <= SIGNAL_STEPS * setup.batch_size else \
        setup.sample(SIGNAL_STEPS * setup.batch_size, seed_offset=3)
    val_src = setup.val if len(setup.val) <= SIGNAL_VAL_ROWS else setup.sample(SIGNAL_VAL_ROWS, source="val", seed_offset=4)
    per_epoch = math.ceil(len(train_src) / setup.batch_size)
    epochs = max(1, min(5, round(SIGNAL_STEPS / per_epoch)))
    trainer = setup.trainer()
    train = _pair(train_src)
    val = _pair(val_src)
    trainer.fit(train, val=val, epochs=0, batch_size=setup.batch_size)
    before = trainer.evaluate(val)
    trainer.fit(train, val=val, epochs=epochs, batch_size=setup.batch_size)
    rows = list(trainer.history)
    last = rows[-1]
    steps = epochs * per_epoch
    ev = {"epochs": epochs, "steps": steps, "val_loss_start": before["loss"], "val_loss_end": last["val_loss"],
          "train_loss": [r["train_loss"] for r in rows], "val_loss": [r["val_loss"] for r in rows]}
    if not all(math.isfinite(r["train_loss"]) for r in rows) or not math.isfinite(last["val_loss"]):
        return CheckResult("learning_signal", title, FAIL, f"training diverged within {steps} steps: the loss became "
                           f"non-finite (lr={setup.lr:g})", ev,
                           "Lower the learning rate (see the LR range test), scale the inputs, or clip gradients.")
    start = before["loss"]
    if max(r["train_loss"] for r in rows) > 10 * start or last["val_loss"] > 3 * start:
        return CheckResult("learning_signal", title, FAIL,
                           f"the loss exploded (lr={setup.lr:g}): val loss {start:.3g} -> {last['val_loss']:.3g}, "
                           f"train loss up to {max(r['train_loss'] for r in rows):.3g} within {steps} steps", ev,
                           "Lower the learning rate (see the LR range test's suggestion), scale the inputs, or clip "
                           "gradients (grad_clip).")
    base = majority(setup)
    acc = accuracy(setup, trainer.model, val_src)
    if acc is not None and base is not None:
        n = max(min(base["n_eval"], len(val_src)), 1)
        b = base["best_constant_accuracy"]  # the best any constant prediction does on val
        margin = 2 * math.sqrt(max(b * (1 - b), 1e-4) / n) + 0.01
        ev.update(val_accuracy=acc, best_constant_accuracy=b, margin=margin)
        if acc > b + margin:
            return CheckResult("learning_signal", title, PASS,
                               f"after {steps} steps val accuracy {acc:.3f} beats the best constant prediction {b:.3f}; "
                               f"val loss {before['loss']:.3g} -> {last['val_loss']:.3g}", ev)
        trend = f"train loss {rows[0]['train_loss']:.3g} -> {last['train_loss']:.3g}"
        return CheckResult("learning_signal", title, FAIL,
                           f"no learning signal on validation: after {steps} steps val accuracy {acc:.3f} is no better "
                           f"than always predicting class {base['best_constant_class']} ({b:.3f}); {trend}", ev,
                           "Check that labels are aligned with their rows (a shuffle or sort applied to X but not y), "
                           "that validation is labelled like train, and that the features carry signal; if the "
                           "train loss did not fall either, see the LR and gradient checks.")
    # regression (or custom loss): compare with predicting the training mean
    ref = _mean_predictor_loss(setup) if setup.loss_info is not None and setup.loss_info.task == "regression" else before["loss"]
    ev["reference_loss"] = ref
    if last["val_loss"] < 0.95 * ref:
        return CheckResult("learning_signal", title, PASS,
                           f"after {steps} steps val loss {last['val_loss']:.4g} is below the reference {ref:.4g}", ev)
    return CheckResult("learning_signal", title, FAIL,
                       f"no learning signal on validation: after {steps} steps val loss {last['val_loss']:.4g} is not "
                       f"below {ref:.4g} (predicting the training mean / the untrained model)", ev,
                       "Check that targets are aligned with their rows and that the features carry signal; see the "
                       "LR and gradient checks.")


def _mean_predictor_loss(setup) -> float:
    mean = setup.train.target.float().mean(0)
    y = setup.val.target.float()
    return float(setup.loss_fn(mean.expand_as(y), y))


def _pair(src):
    x = src.inputs if isinstance(src.inputs, dict) or len(src.inputs) > 1 else src.inputs[0]
    return (x, src.target)


def check_determinism(setup) -> CheckResult:
    title = "determinism"
    n = min(len(setup.train), DETERMINISM_STEPS * setup.batch_size)
    data = _pair(setup.sample(n, seed_offset=2))
    runs = []
    for _ in range(2):
        keep = _KeepLosses()
        trainer = setup.trainer(callbacks=[keep])
        trainer.fit(data, epochs=2, batch_size=setup.batch_size, shuffle=True)
        weights = [p.detach().cpu().clone() for p in trainer.model.parameters()]
        runs.append((torch.stack(keep.losses).float().cpu(), weights))
    (l1, w1), (l2, w2) = runs
    steps = len(l1)
    same_w = all(_same(a, b) for a, b in zip(w1, w2))
    equal = _same(l1, l2)
    ev = {"steps": steps, "seed": setup.seed, "losses_run1": l1.tolist(), "losses_run2": l2.tolist(),
          "weights_equal": same_w}
    if equal and same_w:
        return CheckResult("determinism", title, PASS,
                           f"two runs with seed {setup.seed} gave bit-identical losses and weights over {steps} steps", ev)
    diff = (~torch.isclose(l1, l2, rtol=0, atol=0, equal_nan=True)).nonzero()
    first = int(diff[0]) + 1 if len(diff) else None
    where = f"first differ at step {first} ({l1[first - 1].item():.6g} vs {l2[first - 1].item():.6g})" if first else \
        "losses equal, final weights differ"
    fix = ("Something in the model or data is random without using torch's seeded generator (numpy's default_rng(), "
           "time, a global counter), or a kernel is non-deterministic: call torch.use_deterministic_algorithms(True)")
    if setup.device.type == "cuda":
        fix += " and set CUBLAS_WORKSPACE_CONFIG=:4096:8"
    return CheckResult("determinism", title, FAIL, f"two runs with the same seed differ: {where}", ev, fix + ".")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise-equal values, where NaN equals NaN (a diverged run may still be deterministic)."""
    return a.shape == b.shape and bool(torch.isclose(a, b, rtol=0, atol=0, equal_nan=True).all())

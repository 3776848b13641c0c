"""Data sanity: non-finite values, constant features, scales, class balance, leakage, targets."""

from __future__ import annotations

import math

import torch

from .. import validation
from ..errors import FittorchError
from .report import FAIL, PASS, SKIP, WARN, CheckResult

SCALE_RATIO = 100.0  # max/min feature std above this: "wildly different scales"
SCALE_ABS = 100.0  # a feature whose |mean| or std exceeds this is unscaled for default inits
IMBALANCE = 0.1  # minority/majority class count below this: severe imbalance
LEAK_FAIL = 0.01  # fraction of validation rows found in train that fails the check


def _tensors(src):
    inputs = src.inputs
    named = list(inputs.items()) if isinstance(inputs, dict) else (
        [("X", inputs[0])] if len(inputs) == 1 else [(f"X[{i}]", t) for i, t in enumerate(inputs)])
    if src.target is not None:
        named.append(("y", src.target))
    return named


def check_finite(setup) -> CheckResult:
    bad = {}
    for role, src in (("train", setup.train_raw), ("val", setup.val_raw)):
        if src is None:
            continue
        for name, t in _tensors(src):
            if t.is_floating_point():
                mask = ~torch.isfinite(t)
                count = int(mask.sum())
                if count:
                    first = mask.reshape(len(t), -1).any(1).nonzero()[0, 0].item() if t.ndim else 0
                    bad[f"{role} {name}"] = {"count": count, "first_row": int(first),
                                             "nan": int(torch.isnan(t).sum()), "inf": int(torch.isinf(t).sum())}
    if bad:
        where = "; ".join(f"{k}: {v['count']} (first at row {v['first_row']})" for k, v in bad.items())
        return CheckResult("data.finite", "finite values", FAIL, f"NaN/inf found: {where}", bad,
                           "Drop or impute the rows with NaN/inf before training (e.g. SimpleImputer); "
                           "a single NaN makes the loss and then every weight NaN.")
    return CheckResult("data.finite", "finite values", PASS, "no NaN or inf in inputs or targets")


def check_constant(setup) -> CheckResult:
    X = setup.features(setup.train_raw)
    if X is None:
        return CheckResult("data.constant", "constant features", SKIP, "inputs are not one 2-D float matrix")
    finite = torch.isfinite(X).all(0)
    const = ((X.max(0).values == X.min(0).values) & finite).nonzero().flatten().tolist()
    if const:
        return CheckResult("data.constant", "constant features", WARN,
                           f"{len(const)} of {X.shape[1]} features are constant in train: columns {_list(const)}",
                           {"columns": const},
                           "Drop the constant columns: they carry no information, and standardizing them "
                           "divides by a zero std.")
    return CheckResult("data.constant", "constant features", PASS, f"none of the {X.shape[1]} features is constant")


def check_scale(setup) -> CheckResult:
    X = setup.features(setup.train_raw)
    if X is None:
        return CheckResult("data.scale", "feature scales", SKIP, "inputs are not one 2-D float matrix")
    X = X[torch.isfinite(X).all(1)].double()
    if len(X) < 2:
        return CheckResult("data.scale", "feature scales", SKIP, "fewer than 2 finite rows")
    std, mean = X.std(0), X.mean(0)
    live = std > 0
    if not bool(live.any()):
        return CheckResult("data.scale", "feature scales", SKIP, "every feature is constant")
    s = std[live]
    ratio = float(s.max() / s.min())
    big = float(torch.maximum(std, mean.abs()).max())
    ev = {"std_min": float(s.min()), "std_max": float(s.max()), "std_ratio": ratio, "max_abs_mean": float(mean.abs().max()),
          "column_std_max": int(std.argmax()), "column_std_min": int(torch.where(live, std, math.inf).argmin()),
          "standardize": setup.standardize}
    if setup.standardize:
        return CheckResult("data.scale", "feature scales", PASS,
                           f"standardization is on (fitted on train); raw std ratio {ratio:.3g}", ev)
    lo, hi = float(X.min()), float(X.max())
    ev.update(min=lo, max=hi)
    if lo >= -1.0 and hi <= 1.0 and big <= 1.0:
        # One common bounded range (pixels / 255, min-max scaled columns): already scaled, however
        # small a rarely-lit pixel's std is.
        return CheckResult("data.scale", "feature scales", PASS,
                           f"every feature lies in [{lo:.3g}, {hi:.3g}]: a common scale (std ratio {ratio:.3g} "
                           "comes from rarely-varying columns, not from units)", ev)
    if ratio > SCALE_RATIO or big > SCALE_ABS:
        return CheckResult("data.scale", "feature scales", WARN,
                           f"unscaled features: std from {ev['std_min']:.3g} (column {ev['column_std_min']}) to "
                           f"{ev['std_max']:.3g} (column {ev['column_std_max']}), ratio {ratio:.3g}; "
                           f"largest |mean| {ev['max_abs_mean']:.3g}", ev,
                           "Standardize the features with a mean/std fitted on the training rows only "
                           "(sklearn StandardScaler, or 'standardize: true' in the config). Unscaled features "
                           "make the large columns dominate and force a tiny learning rate.")
    return CheckResult("data.scale", "feature scales", PASS,
                       f"feature std {ev['std_min']:.3g}..{ev['std_max']:.3g} (ratio {ratio:.3g}), "
                       f"|mean| <= {ev['max_abs_mean']:.3g}", ev)


def _indicators(setup, src):
    """A multilabel target: [N, C > 1] of 0/1 with a bce loss (one logit per label); else None."""
    if src is None or src.target is None or setup.loss_info is None or setup.loss_info.task != "binary":
        return None
    t = src.target
    if t.ndim != 2 or t.shape[1] < 2 or not bool(((t == 0) | (t == 1)).all()):
        return None
    return t


def _labels(setup, src):
    """Class labels as a 1-D long tensor, for class-index and 0/1 binary targets; else None."""
    if src is None or src.target is None or _indicators(setup, src) is not None:
        return None
    t = src.target
    if setup.classification and not t.is_floating_point():
        return t.reshape(-1)
    if setup.loss_info is not None and setup.loss_info.task == "binary":
        flat = t.reshape(-1)
        if bool(((flat == 0) | (flat == 1)).all()):
            return flat.long()
    return None


def majority(setup) -> dict | None:
    """The majority class of train, and the accuracy of always predicting it (on val if given)."""
    y = _labels(setup, setup.train)
    if y is None or len(y) == 0 or int(y.min()) < 0:
        return None
    counts = torch.bincount(y)
    cls = int(counts.argmax())
    y_eval = _labels(setup, setup.val) if setup.val is not None else y
    if y_eval is None or not len(y_eval):
        y_eval = y
    acc = float((y_eval == cls).float().mean())
    eval_counts = torch.bincount(y_eval.clamp(min=0))
    return {"class": cls, "accuracy": acc, "counts": counts.tolist(), "n_eval": len(y_eval),
            "best_constant_class": int(eval_counts.argmax()), "best_constant_accuracy": float(eval_counts.max() / len(y_eval))}


def check_balance(setup) -> CheckResult:
    title = "class balance"
    if setup.loss_info is not None and setup.loss_info.task == "regression":
        y = setup.train_raw.target.double()
        mean, std = float(y.mean()), float(y.std()) if len(y) > 1 else 0.0
        ev = {"target_mean": mean, "target_std": std}
        if max(abs(mean), std) > SCALE_ABS:
            return CheckResult("data.balance", "target scale", WARN,
                               f"regression targets are large: mean {mean:.4g}, std {std:.4g}", ev,
                               "Standardize y (fit the mean/std on train) and invert it on predictions; large "
                               "targets make the initial MSE huge and the gradients unbalanced.")
        return CheckResult("data.balance", "target scale", PASS, f"regression targets: mean {mean:.3g}, std {std:.3g}", ev)
    labels = _indicators(setup, setup.train_raw)
    if labels is not None:
        return _label_balance(labels, _namer(setup, labels.shape[1]))
    base = majority(setup)
    if base is None:
        return CheckResult("data.balance", title, SKIP, "targets are not class labels")
    counts = [c for c in base["counts"]]
    present = [c for c in counts if c > 0]
    ratio = min(present) / max(present)
    ev = {"counts": {i: c for i, c in enumerate(counts)}, "minority_majority_ratio": ratio,
          "majority_class": base["class"], "majority_baseline_accuracy": base["accuracy"]}
    name = _namer(setup, len(counts))
    dist = ", ".join(f"{name(i)}: {c}" for i, c in enumerate(counts))
    kind = "val" if setup.val is not None else "train"
    share = max(present) / sum(present)
    summary = (f"{len(present)} classes ({dist}); always predicting the majority class {name(base['class'])} "
               f"({share:.0%} of train) scores {base['accuracy']:.3f} on {kind}")
    missing = [name(i) for i, c in enumerate(counts) if c == 0]
    if ratio < IMBALANCE:
        return CheckResult("data.balance", title, WARN, "severe imbalance: " + summary, ev,
                           f"Judge the model against the {base['accuracy']:.3f} baseline, not 0.5; weight the loss "
                           "(CrossEntropyLoss(weight=...)), resample, or report balanced accuracy / F1. Initialize "
                           "the final bias to the log class priors so the initial loss starts at the prior entropy.")
    if missing:
        return CheckResult("data.balance", title, WARN, f"classes {_list(missing)} have no training rows; " + summary,
                           ev, "Encode the labels as 0..C-1 with no gaps (sklearn LabelEncoder).")
    return CheckResult("data.balance", title, PASS, summary, ev)


def _namer(setup, n: int):
    """``i -> "name (i)"`` when the setup names its n classes or labels, else ``i -> "i"``."""
    names = setup.labels
    if names is None or len(names) != n:
        return str
    return lambda i: f"{names[i]} ({i})"


def _label_balance(y: torch.Tensor, name=str) -> CheckResult:
    """Multilabel: how often each label is on. A label almost never (or almost always) on is
    the multilabel form of a severe imbalance."""
    share = y.double().mean(0).tolist()
    ev = {"positive_share": {i: round(p, 4) for i, p in enumerate(share)}}
    shares = ", ".join(f"{name(i)}: {p:.0%}" for i, p in enumerate(share))
    summary = f"{len(share)} labels, each on in this share of the training rows: {shares}"
    lopsided = [name(i) for i, p in enumerate(share) if p < IMBALANCE or p > 1 - IMBALANCE]
    if lopsided:
        which = f"label {lopsided[0]} is" if len(lopsided) == 1 else f"labels {_list(lopsided)} are"
        return CheckResult("data.balance", "label balance", WARN, f"{which} lopsided; " + summary,
                           ev, "Weight the rare side (BCEWithLogitsLoss(pos_weight=negatives / positives per label)) "
                           "and judge the model by per-label F1 (f1_macro), not subset accuracy alone.")
    return CheckResult("data.balance", "label balance", PASS, summary, ev)


def _row_keys(src) -> list[bytes]:
    parts = [t.reshape(len(t), -1).contiguous().numpy() for _, t in _tensors(src)[: len(src.inputs)]]
    if len(parts) == 1:
        return [r.tobytes() for r in parts[0]]
    return [b"".join(p[i].tobytes() for p in parts) for i in range(len(src))]


def check_leakage(setup) -> CheckResult:
    title = "train/val leakage"
    if setup.val_raw is None:
        return CheckResult("data.leakage", title, SKIP, "no validation data given (pass val=...)")
    train_keys = _row_keys(setup.train_raw)
    seen = set(train_keys)
    val_keys = _row_keys(setup.val_raw)
    shared_rows = [i for i, k in enumerate(val_keys) if k in seen]
    dup_train = len(train_keys) - len(seen)
    frac = len(shared_rows) / max(len(val_keys), 1)
    ev = {"val_rows_in_train": len(shared_rows), "val_rows": len(val_keys), "fraction": frac,
          "first_val_rows": shared_rows[:10], "duplicate_rows_within_train": dup_train}
    if shared_rows:
        status = FAIL if frac >= LEAK_FAIL else WARN
        return CheckResult("data.leakage", title, status,
                           f"{len(shared_rows)} of {len(val_keys)} validation rows ({frac:.1%}) also appear in train "
                           f"(e.g. val rows {_list(shared_rows[:5])})", ev,
                           "Deduplicate before splitting (df.drop_duplicates()), or split by group (GroupShuffleSplit) "
                           "so the same sample never lands on both sides; leaked rows make validation scores optimistic.")
    note = f"; {dup_train} duplicate rows within train" if dup_train else ""
    return CheckResult("data.leakage", title, PASS, f"no validation row appears in train{note}", ev)


def check_target(setup) -> CheckResult:
    """The target's dtype and shape against the loss, with one dry forward on two rows."""
    title = "targets vs loss"
    loss_name = setup.loss_info.name if setup.loss_info is not None else "custom loss"
    if setup.train.target is None:
        return CheckResult("data.target", title, FAIL, "the training data has no targets", {},
                           "Pass (X, y), or a Dataset whose items are (x, y).")
    model = setup.copy_model()
    batch = setup.on_device(setup.sample(2))
    try:
        kind = setup.dry_forward(model, batch)
        for role, src in (("training", setup.train), ("validation", setup.val)):
            if src is not None:
                validation.check_class_range(src, kind, role)
    except FittorchError as exc:
        return CheckResult("data.target", title, FAIL, str(exc).splitlines()[0], {"loss": loss_name},
                           "See the message: make the model's output and the targets fit the loss.")
    setup.output_kind = kind
    y = setup.train.target
    ev = {"loss": loss_name, "target_dtype": str(y.dtype).replace("torch.", ""), "target_shape": list(y.shape),
          "task": kind.task}
    if kind.task == "multiclass":
        ev["num_classes"] = kind.num_classes
    if kind.task == "regression" and y.is_floating_point():
        uniq = torch.unique(y)
        if len(uniq) <= 10 and bool((uniq == uniq.round()).all()) and len(y) >= 50:
            return CheckResult("data.target", title, WARN,
                               f"'{loss_name}' is a regression loss, but y has only {len(uniq)} integer values "
                               f"({_list(uniq.tolist())}): these look like class labels", ev,
                               "For classification use loss='cross_entropy' with integer labels and one output "
                               "per class.")
    shape = "x".join(map(str, y.shape))
    extra = f", {kind.num_classes} classes" if kind.task == "multiclass" else ""
    return CheckResult("data.target", title, PASS, f"y {ev['target_dtype']} [{shape}] fits '{loss_name}' ({kind.task}{extra})", ev)


def _list(items, limit: int = 8) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")

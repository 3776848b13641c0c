"""Checks on the model at its initial weights: initial loss, gradient flow, train/eval mode, gradcheck."""

from __future__ import annotations

import math

import torch
from torch import nn

from .report import FAIL, PASS, SKIP, WARN, CheckResult

INIT_SAMPLE = 1024  # rows used for the initial loss
INIT_LOSS_FACTOR = 1.5  # warn when the initial loss exceeds this many times the reference value
REG_INIT_FACTOR = 10.0  # regression: warn when the initial loss exceeds this many times the mean predictor's
TINY_RATIO = 1e-7  # grad/weight norm ratio below this: a vanishing gradient


def _last_linear(model):
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = (name, m)
    return last


def _ends_with(model, types) -> str | None:
    mods = [m for m in model.modules() if not list(m.children())]
    return type(mods[-1]).__name__ if mods and isinstance(mods[-1], types) else None


def check_initial_loss(setup) -> CheckResult:
    title = "initial loss"
    model = setup.copy_model().eval()
    inputs, target = setup.on_device(setup.sample(INIT_SAMPLE))
    with torch.no_grad():
        out = setup.forward(model, inputs).float()
        loss = float(setup.loss_fn(out, target))
    ev = {"loss": loss, "rows": len(target), "input_scale": _input_scale(inputs)}
    if not math.isfinite(loss):
        return CheckResult("init_loss", title, FAIL, f"the loss at init is {loss}", ev,
                           "Look for log(0), division by zero or NaN weights in the model; check the data check above.")
    info = setup.loss_info
    if info is None:
        return CheckResult("init_loss", title, PASS, f"loss at init {loss:.4g} (no reference value for a custom loss)", ev)
    last = _last_linear(model)
    if last is not None:
        ev["final_layer"] = last[0]
        ev["final_weight_std"] = float(last[1].weight.detach().float().std())
    if info.target == "class_index":
        return _classification_init(setup, out, loss, ev, info.name)
    if info.task == "binary":
        p = float(target.float().mean())
        expected = -(p * math.log(max(p, 1e-12)) + (1 - p) * math.log(max(1 - p, 1e-12))) if 0 < p < 1 else math.log(2)
        ev.update(expected=math.log(2), prior_entropy=expected, output_std=float(out.std()))
        if loss > INIT_LOSS_FACTOR * math.log(2) + 0.05:
            summary = f"loss at init {loss:.4g}, expected about ln(2) = {math.log(2):.3f}"
            if _unscaled(ev):
                return _unscaled_inputs(summary, ev)
            return CheckResult("init_loss", title, WARN, summary, ev,
                               "The model starts confident and wrong: scale down the final layer's initial weights "
                               "(e.g. multiply by 0.01) or zero them.")
        return CheckResult("init_loss", title, PASS, f"loss at init {loss:.4g}, expected about ln(2) = {math.log(2):.3f}", ev)
    # regression: compare with predicting the training mean
    mean = setup.train.target.float().mean(0).to(out.device)
    base = float(setup.loss_fn(mean.expand_as(target).to(out.dtype), target.to(out.dtype)))
    ev.update(mean_predictor_loss=base, output_mean=float(out.mean()), output_std=float(out.std()))
    if loss > REG_INIT_FACTOR * base + 1e-8:
        return CheckResult("init_loss", title, WARN,
                           f"loss at init {loss:.4g} is {loss / max(base, 1e-12):.3g}x that of predicting the mean ({base:.4g})",
                           ev, "Standardize the targets, or initialize the final bias to the target mean so the model "
                               "starts from the mean predictor.")
    return CheckResult("init_loss", title, PASS,
                       f"loss at init {loss:.4g}; predicting the mean gives {base:.4g}", ev)


def _classification_init(setup, out, loss, ev, loss_name) -> CheckResult:
    title = "initial loss"
    C = int(out.shape[1]) if out.ndim > 1 else 1
    expected = math.log(C) if C > 1 else 0.0
    probs_like = bool(((out >= 0) & (out <= 1)).all()) and bool(torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=1e-3))
    logprobs_like = bool((out <= 1e-6).all()) and bool(torch.allclose(torch.logsumexp(out, 1), torch.zeros_like(out[:, 0]), atol=1e-3))
    ev.update(expected=expected, num_classes=C, output_std=float(out.std()), outputs_are_probabilities=probs_like,
              outputs_are_log_probabilities=logprobs_like)
    ending = _ends_with(setup.model, (nn.Softmax, nn.LogSoftmax, nn.Sigmoid))
    if ending:
        ev["model_ends_with"] = ending
    if loss_name == "cross_entropy" and probs_like:
        return CheckResult("init_loss", title, FAIL,
                           f"the model outputs probabilities (rows sum to 1{', it ends with ' + ending if ending else ''}): "
                           f"softmax is applied twice, in the model and inside cross_entropy (loss {loss:.4g})", ev,
                           "Remove the final softmax: cross_entropy expects raw logits. Apply softmax only when "
                           "you need probabilities at predict time.")
    if loss_name == "nll" and not logprobs_like:
        return CheckResult("init_loss", title, FAIL,
                           "'nll' expects log-probabilities, but the outputs are not log_softmax outputs "
                           f"({'they are probabilities' if probs_like else 'rows do not logsumexp to 0'})", ev,
                           "End the model with nn.LogSoftmax(dim=1), or drop it and use loss='cross_entropy' on raw logits.")
    summary = f"loss at init {loss:.4g}, expected about ln({C}) = {expected:.3f}"
    if loss > INIT_LOSS_FACTOR * expected + 0.05:
        std = ev["output_std"]
        if _unscaled(ev):
            return _unscaled_inputs(summary + f"; logits have std {std:.3g}", ev)
        return CheckResult("init_loss", title, WARN, summary + f"; logits have std {std:.3g}", ev,
                           "The network starts confident and wrong, which wastes the first epochs and can kill "
                           "units: the final layer's initial weights are too large. Scale them down (e.g. "
                           "final.weight.data *= 0.01) or zero-init the final layer.")
    return CheckResult("init_loss", title, PASS, summary, ev)


def _input_scale(inputs) -> float | None:
    """The largest feature std or |mean| of a single float input matrix (None for other inputs)."""
    x = inputs[0] if isinstance(inputs, tuple) and len(inputs) == 1 else inputs
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2 or len(x) < 2:
        return None
    flat = x.detach().double().reshape(len(x), -1)
    flat = flat[torch.isfinite(flat).all(1)]
    if len(flat) < 2:
        return None
    return float(torch.maximum(flat.std(0), flat.mean(0).abs()).max())


def _unscaled(ev: dict) -> bool:
    from .data_checks import SCALE_ABS

    return ev.get("input_scale") is not None and ev["input_scale"] > SCALE_ABS


def _unscaled_inputs(summary: str, ev: dict) -> CheckResult:
    """A high initial loss caused by the inputs, not the initial weights: say so."""
    return CheckResult("init_loss", "initial loss", WARN,
                       summary + f"; the inputs are unscaled (a feature's std or |mean| is {ev['input_scale']:.3g})",
                       ev, "Standardize the features (mean/std fitted on the training rows: sklearn StandardScaler, "
                           "'standardize: true' in a config, or doctor(..., standardize=True)); large inputs give "
                           "large logits whatever the initial weights are.")


def check_grad_flow(setup) -> CheckResult:
    title = "gradient flow"
    model = setup.copy_model().train()
    inputs, target = setup.on_device(setup.sample(max(setup.batch_size, 2)))
    loss = setup.loss_fn(setup.forward(model, inputs), target)
    loss.backward()
    frozen, unused, zero, ratios = [], [], [], {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            frozen.append(name)
        elif p.grad is None:
            unused.append(name)
        elif not bool(p.grad.any()):
            zero.append(name)
        else:
            w = float(p.detach().float().norm())
            ratios[name] = float(p.grad.float().norm()) / w if w > 0 else math.inf
    # Biases right before a normalization layer get a (near) zero gradient by design: BN removes
    # the mean. Judge zero and vanishing gradients on weight matrices only; report biases as evidence.
    shapes = {name: p.ndim for name, p in model.named_parameters()}
    zero_bias = [n for n in zero if shapes[n] < 2]
    zero = [n for n in zero if shapes[n] >= 2]
    tiny = [n for n, r in ratios.items() if r < TINY_RATIO and shapes[n] >= 2]
    n = len(frozen) + len(unused) + len(zero) + len(zero_bias) + len(ratios)
    ev = {"parameters": n, "frozen": frozen, "no_grad": unused, "zero_grad": zero, "zero_grad_bias": zero_bias,
          "tiny_grad": tiny,
          "grad_to_weight_norm": {k: float(f"{v:.3g}") for k, v in ratios.items()}}
    if unused or zero:
        parts = []
        if unused:
            parts.append(f"{len(unused)} get no gradient (unused in forward, or detached): {', '.join(unused[:6])}")
        if zero:
            parts.append(f"{len(zero)} get an all-zero gradient (dead units?): {', '.join(zero[:6])}")
        return CheckResult("grad_flow", title, FAIL, f"of {n} parameter tensors, " + "; ".join(parts), ev,
                           "Make sure every layer is used in forward() and not cut off by .detach(), .item() or "
                           "numpy; for dead ReLUs lower the learning rate, fix the bias init, or use LeakyReLU.")
    if frozen:
        return CheckResult("grad_flow", title, WARN,
                           f"{len(frozen)} of {n} parameter tensors are frozen (requires_grad=False): {', '.join(frozen[:6])}",
                           ev, "Intended when fine-tuning; otherwise unfreeze them with p.requires_grad_(True).")
    judged = [r for k, r in ratios.items() if shapes[k] >= 2] or list(ratios.values())
    lo, hi = (min(judged), max(judged)) if judged else (0.0, 0.0)
    if tiny:
        return CheckResult("grad_flow", title, WARN,
                           f"vanishing gradients: grad/weight norm below {TINY_RATIO:g} in {', '.join(tiny[:6])}", ev,
                           "Check for saturating activations (sigmoid/tanh in deep stacks), add normalization or "
                           "residual connections.")
    return CheckResult("grad_flow", title, PASS,
                       f"all {n} parameter tensors get gradients; grad/weight norm ratio {lo:.2g}..{hi:.2g} (weights)", ev)


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def check_mode(setup) -> CheckResult:
    title = "train/eval mode"
    dropout = [n for n, m in setup.model.named_modules() if isinstance(m, _DROPOUT) and m.p > 0]
    norms = [n for n, m in setup.model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model = setup.copy_model()
    inputs, _ = setup.on_device(setup.sample(max(min(setup.batch_size, 256), 2)))
    with torch.no_grad():
        model.eval()
        e1 = setup.forward(model, inputs).float()
        e2 = setup.forward(model, inputs).float()
        model.train()
        t1 = setup.forward(model, inputs).float()
    diff = float((t1 - e1).abs().max())
    ev = {"dropout": dropout, "batchnorm": norms, "max_abs_diff_train_vs_eval": diff,
          "eval_repeatable": bool(torch.equal(e1, e2))}
    if not torch.equal(e1, e2):
        return CheckResult("mode", title, WARN,
                           f"two eval-mode passes on the same batch differ (max {float((e1 - e2).abs().max()):.3g}): "
                           "the model is random in eval mode", ev,
                           "Use nn.Dropout modules, or F.dropout(x, p, training=self.training); any noise in "
                           "forward() should depend on self.training.")
    n_train = len(setup.train)
    last = n_train % setup.batch_size
    if norms and (setup.batch_size == 1 or last == 1):
        ev["last_batch_size"] = last
        what = "batch_size=1" if setup.batch_size == 1 else f"the last batch of each epoch has 1 row ({n_train} rows, batch {setup.batch_size})"
        return CheckResult("mode", title, WARN, f"batchnorm ({', '.join(norms[:3])}) sees batches of size 1: {what}", ev,
                           "Batch statistics of one row are meaningless (BatchNorm1d raises on them in training): "
                           "use drop_last=True, a batch size that does not leave 1 row, or LayerNorm.")
    layers = [f"dropout ({len(dropout)})"] * bool(dropout) + [f"batchnorm ({len(norms)})"] * bool(norms)
    if layers:
        return CheckResult("mode", title, PASS,
                           f"{' and '.join(layers)} present: train vs eval outputs differ by up to {diff:.3g}, as "
                           "expected; fittorch trains in train mode and evaluates in eval mode", ev)
    if diff > 0:
        return CheckResult("mode", title, WARN,
                           f"outputs differ between train and eval mode (max {diff:.3g}) though the model has no "
                           "dropout or batchnorm", ev,
                           "A custom layer depends on self.training; check that it is meant to.")
    return CheckResult("mode", title, PASS, "no dropout or batchnorm: train and eval outputs are identical", ev)


def check_gradcheck(setup, enabled: bool) -> CheckResult:
    title = "gradcheck (float64)"
    if not enabled:
        return CheckResult("gradcheck", title, SKIP, "off (pass gradcheck=True / --gradcheck to run it)")
    model = setup.copy_model().double().eval()
    inputs, _ = setup.on_device(setup.sample(2))
    x = inputs[0] if isinstance(inputs, tuple) and len(inputs) == 1 else None
    out = setup.forward(model, _to_double(inputs))
    custom = sorted(_custom_functions(out))
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters() if p.requires_grad}
    n_params = sum(p.numel() for p in params.values())
    ev = {"custom_functions": custom, "wrt_input": x is not None and x.is_floating_point(), "parameters_checked": 0}
    checks = []
    if ev["wrt_input"]:
        xi = x.detach().double().requires_grad_(True)
        checks.append(("input", lambda t: model(t), (xi,)))
    if n_params <= 5000:
        from torch.func import functional_call

        names = list(params)
        buffers = dict(model.named_buffers())

        def by_params(*ps):
            return functional_call(model, ({**dict(zip(names, ps)), **buffers}), _to_double(inputs))

        checks.append(("parameters", by_params, tuple(params.values())))
        ev["parameters_checked"] = n_params
    if not checks:
        return CheckResult("gradcheck", title, SKIP, f"inputs are not float and the model has {n_params} parameters (> 5000)", ev)
    for what, fn, args in checks:
        try:
            torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True)
        except Exception as exc:  # noqa: BLE001 - GradcheckError, or the custom backward itself failing
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return CheckResult("gradcheck", title, FAIL, f"analytical and numerical gradients w.r.t. the {what} differ: {first}",
                               {**ev, "error": str(exc)[:2000]},
                               "Fix the backward() of the custom autograd.Function" + (f"s ({', '.join(custom)})" if custom else "s")
                               + "; compare it with torch.autograd.gradcheck on the Function alone.")
    found = f"; custom Functions: {', '.join(custom)}" if custom else ""
    return CheckResult("gradcheck", title, PASS,
                       f"gradients match finite differences (input{' and ' + str(n_params) + ' parameters' if ev['parameters_checked'] else ''}){found}", ev)


def _to_double(inputs):
    from ..data import map_structure

    return map_structure(lambda t: t.double() if t.is_floating_point() else t, inputs)


def _custom_functions(out) -> set[str]:
    """Names of the custom ``autograd.Function`` classes in the graph that produced ``out``."""
    from torch.autograd.function import BackwardCFunction

    names, seen, stack = set(), set(), [getattr(out, "grad_fn", None)]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if isinstance(fn, BackwardCFunction):
            names.add(getattr(fn, "_forward_cls", type(fn)).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return names

"""fittorch.doctor: deliberately broken setups must be flagged; the healthy reference must not fail."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import fittorch as ft
from fittorch.doctor import CHECKS, DoctorReport, doctor
from fittorch.errors import ConfigError
from fittorch.models import MLP


@pytest.fixture(scope="module")
def ref():
    from fittorch.demo import make_reference_data

    train, val, _ = make_reference_data()
    return train, val


def ref_mlp(seed: int = 42) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(20, [64], 2)


@pytest.fixture(scope="module")
def healthy(ref, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("doctor")
    model = ref_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = doctor(model, ref[0], val=ref[1], loss="cross_entropy", lr=1e-3, seed=42, gradcheck=True, out=out)
    return report, model, before, out


# -- the healthy reference experiment ---------------------------------------------------------
def test_reference_experiment_has_no_fails(healthy):
    report = healthy[0]
    assert [c.id for c in report] == list(CHECKS)
    assert report.failed == [], report.render(color=False)
    assert report.ok and report.exit_code() == 0
    assert report["overfit_batch"].status == "pass"
    assert report["learning_signal"].status == "pass"
    assert report["gradcheck"].status == "pass"
    assert report["determinism"].status == "pass"


def test_reference_initial_loss_is_near_ln2(healthy):
    ev = healthy[0]["init_loss"].evidence
    assert ev["expected"] == pytest.approx(np.log(2))
    assert abs(ev["loss"] - np.log(2)) < 0.2


def test_doctor_never_changes_the_model(healthy):
    _, model, before, _ = healthy
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_lr_range_png_is_written_and_suggestion_is_sane(healthy):
    report, _, _, out = healthy
    ev = report["lr_range"].evidence
    png = out / "lr_range.png"
    assert ev["plot"] == str(png) and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 1e-4 < ev["suggested_lr"] < 1.0
    assert ev["diverge_lr"] is None or ev["diverge_lr"] > ev["suggested_lr"]


def test_json_round_trip(healthy):
    report = healthy[0]
    data = json.loads(report.to_json())
    assert data["ok"] is True
    assert data["counts"]["fail"] == 0
    assert [c["id"] for c in data["checks"]] == list(CHECKS)
    assert all(c["status"] in ("pass", "warn", "fail", "skip") for c in data["checks"])
    assert data["setup"]["train"] == "800x20"


def test_terminal_rendering(healthy):
    text = healthy[0].render(color=False)
    assert "PASS  overfit one batch" in text
    assert "OK: " in text and "0 failed" in text
    assert "\033[" not in text
    assert "\033[" in healthy[0].render(color=True)


def test_ft_doctor_is_the_function():
    import fittorch.doctor  # noqa: F401 - importing the package must not shadow ft.doctor

    assert callable(ft.doctor) and ft.doctor is doctor


# -- the broken setups of the issue -----------------------------------------------------------
def test_shuffled_labels_overfit_passes_but_no_learning_signal(ref):
    (X, y), val = ref
    y_shuffled = np.random.default_rng(0).permutation(y)
    report = doctor(ref_mlp(), (X, y_shuffled), val=val, checks=["overfit_batch", "learning_signal"])
    assert report["overfit_batch"].status == "pass"
    signal = report["learning_signal"]
    assert signal.status == "fail"
    assert "no learning signal on validation" in signal.summary
    assert signal.evidence["val_accuracy"] <= signal.evidence["best_constant_accuracy"] + signal.evidence["margin"]
    assert not report.ok


def test_frozen_layer_is_reported(ref):
    model = ref_mlp()
    model[0].requires_grad_(False)
    report = doctor(model, ref[0], val=ref[1], checks=["grad_flow"])
    check = report["grad_flow"]
    assert check.status == "warn"
    assert check.evidence["frozen"] == ["0.weight", "0.bias"]
    assert "frozen" in check.summary and "requires_grad" in check.fix


def test_unused_layer_fails_gradient_flow(ref):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = ref_mlp()
            self.extra = nn.Linear(2, 2)  # defined, never used

        def forward(self, x):
            return self.body(x)

    report = doctor(Net(), ref[0], checks=["grad_flow"])
    assert report["grad_flow"].status == "fail"
    assert report["grad_flow"].evidence["no_grad"] == ["extra.weight", "extra.bias"]


def test_dead_relus_fail_gradient_flow(ref):
    model = ref_mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every hidden unit is negative: ReLU passes no gradient
    report = doctor(model, ref[0], checks=["grad_flow"])
    assert report["grad_flow"].status == "fail"
    assert "0.weight" in report["grad_flow"].evidence["zero_grad"]


def test_huge_final_layer_init_is_flagged(ref):
    model = ref_mlp()
    with torch.no_grad():
        model[2].weight.mul_(100.0)
    report = doctor(model, ref[0], checks=["init_loss"])
    check = report["init_loss"]
    assert check.status == "warn"
    assert check.evidence["loss"] > 3 * np.log(2)
    assert "final layer" in check.fix


def test_softmax_before_cross_entropy_fails(ref):
    model = nn.Sequential(ref_mlp(), nn.Softmax(dim=1))
    report = doctor(model, ref[0], checks=["init_loss"])
    check = report["init_loss"]
    assert check.status == "fail"
    assert "softmax is applied twice" in check.summary
    assert check.evidence["outputs_are_probabilities"] is True
    assert check.evidence["model_ends_with"] == "Softmax"


def test_train_val_leakage_is_counted(ref):
    (X, y), (Xv, yv) = ref
    X_leaky = np.concatenate([Xv[:37], X[:700]])
    y_leaky = np.concatenate([yv[:37], y[:700]])
    report = doctor(ref_mlp(), (X_leaky, y_leaky), val=(Xv, yv), checks=["data"])
    check = report["data.leakage"]
    assert check.status == "fail"
    assert check.evidence["val_rows_in_train"] == 37
    assert check.evidence["first_val_rows"][:3] == [0, 1, 2]
    assert "37 of 200" in check.summary


def test_unscaled_features_warn_unless_standardized(ref):
    (X, y), (Xv, yv) = ref
    scale = np.logspace(-2, 4, 20).astype(np.float32)
    raw = doctor(ref_mlp(), (X * scale + 50, y), val=(Xv * scale + 50, yv), checks=["data.scale", "init_loss"])
    assert raw["data.scale"].status == "warn"
    assert raw["data.scale"].evidence["std_ratio"] > 1e5
    assert raw["data.scale"].evidence["column_std_max"] == 19
    assert "Standardize" in raw["data.scale"].fix
    assert raw["init_loss"].status == "warn"  # the consequence: huge logits at init
    scaled = doctor(ref_mlp(), (X * scale + 50, y), val=(Xv * scale + 50, yv), standardize=True,
                    checks=["data.scale", "init_loss"])
    assert scaled["data.scale"].status == "pass"
    assert scaled["init_loss"].status == "pass"  # the doctor standardizes like the pipeline would


def test_lr_10_is_flagged(ref, tmp_path):
    report = doctor(ref_mlp(), ref[0], val=ref[1], lr=10.0, out=tmp_path,
                    checks=["lr_range", "learning_signal"])
    lr_check = report["lr_range"]
    assert lr_check.status == "fail"
    assert lr_check.evidence["diverge_lr"] < 10.0
    assert lr_check.evidence["suggested_lr"] < 0.1
    assert report["learning_signal"].status == "fail"
    assert report.exit_code() == 1
    assert (tmp_path / "lr_range.png").exists()


# -- more data checks ------------------------------------------------------------------------
def test_nan_values_fail_and_skip_the_model_checks(ref):
    (X, y), val = ref
    X = X.copy()
    X[5, 3] = np.nan
    X[9, 0] = np.inf
    report = doctor(ref_mlp(), (X, y), val=val, checks=["data.finite", "init_loss", "overfit_batch"])
    finite = report["data.finite"]
    assert finite.status == "fail"
    assert finite.evidence["train X"] == {"count": 2, "first_row": 5, "nan": 1, "inf": 1}
    assert report["init_loss"].status == "skip" and report["overfit_batch"].status == "skip"


def test_constant_features_warn(ref):
    (X, y), _ = ref
    X = X.copy()
    X[:, [4, 11]] = 3.0
    report = doctor(ref_mlp(), (X, y), checks=["data.constant"])
    assert report["data.constant"].status == "warn"
    assert report["data.constant"].evidence["columns"] == [4, 11]


def test_severe_imbalance_reports_the_majority_baseline(small_clf_data, mlp_factory):
    X, y = small_clf_data
    keep = (y == 0) | (np.arange(len(y)) % 20 == 0)
    report = doctor(mlp_factory(), (X[keep], y[keep]), checks=["data.balance"])
    check = report["data.balance"]
    assert check.status == "warn" and "severe imbalance" in check.summary
    counts = np.bincount(y[keep])
    assert check.evidence["majority_baseline_accuracy"] == pytest.approx(counts.max() / counts.sum())


def test_multilabel_targets_get_a_per_label_balance_not_two_classes():
    """[N, 3] 0/1 targets with bce_with_logits: each label's share, and a warning for a rare label."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 6, generator=g)
    y = torch.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 2.0], dim=1).float()  # label 2: a few %
    report = doctor(MLP(6, [16], 3), (X, y), loss="bce_with_logits", checks=["data.balance"])
    check = report["data.balance"]
    assert check.title == "label balance" and check.status == "warn"
    assert "label 2 is lopsided" in check.summary and "pos_weight" in check.fix
    shares = check.evidence["positive_share"]
    assert shares[2] == pytest.approx(float(y[:, 2].mean()), abs=1e-4) and 0.4 < shares[0] < 0.6
    named = doctor(MLP(6, [16], 3), (X, y), loss="bce_with_logits", checks=["data.balance"],
                   labels=["sports", "music", "art"])["data.balance"]
    assert "label art (2) is lopsided" in named.summary and "sports (0): " in named.summary


def test_fittorch_doctor_on_a_config_names_the_classes_and_labels(tmp_path, capsys):
    """The CLI passes the data's own names: class labels, or the multilabel target columns."""
    import pandas as pd

    from fittorch.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    df = pd.DataFrame(X, columns=list("abcd"))
    df["species"] = np.array(["adelie", "gentoo"])[(X[:, 0] > 0).astype(int)]
    df["sports"], df["art"] = (X[:, 1] > 0).astype(int), (X[:, 2] > 1.9).astype(int)
    df.to_csv(tmp_path / "d.csv", index=False)
    for target, words in (("species", "2 classes (adelie (0): "), ("[sports, art]", "label art (1) is lopsided")):
        (tmp_path / "c.yaml").write_text(f"data: {{source: d.csv, target: {target}, val_split: 0.2}}\n"
                                         "model: {type: mlp, hidden: [8]}\n")
        main(["doctor", str(tmp_path / "c.yaml"), "--checks", "data.balance", "--out", str(tmp_path / "doc")])
        assert words in capsys.readouterr().out


def test_non_integer_labels_for_cross_entropy_fail_setup(ref):
    (X, y), _ = ref
    report = doctor(ref_mlp(), (X, y + 0.5))
    assert report.checks[0].id == "setup" and report.checks[0].status == "fail"
    assert "class indices" in report.checks[0].summary
    assert all(c.status == "skip" for c in report.checks[1:])


def test_output_shape_mismatch_fails_the_target_check(small_reg_data):
    X, y = small_reg_data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))  # [N, 1] against y [N]
    report = doctor(model, (X, y), loss="mse", checks=["data.target", "init_loss"])
    assert report["data.target"].status == "fail"
    assert "(200,)" in report["data.target"].summary or "shape" in report["data.target"].summary
    assert report["init_loss"].status == "skip"


def test_healthy_regression_has_no_fails(small_reg_data):
    X, y = small_reg_data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    report = doctor(model, (X[:160], y[:160]), val=(X[160:], y[160:]), loss="mse", lr=1e-2,
                    checks=["data", "init_loss", "grad_flow", "overfit_batch", "learning_signal"])
    assert report.failed == [], report.render(color=False)
    assert report["data.balance"].title == "target scale"
    assert "mean_predictor_loss" in report["init_loss"].evidence


# -- model behaviour ---------------------------------------------------------------------------
class _Noisy(nn.Module):
    """Adds noise from numpy's unseeded generator: not reproducible from the seed."""

    def __init__(self):
        super().__init__()
        self.net = ref_mlp()

    def forward(self, x):
        noise = np.random.default_rng().normal(size=x.shape).astype(np.float32)
        noise = torch.from_numpy(noise).to(x.device)
        return self.net(x + 0.1 * noise)


def test_unseeded_randomness_fails_determinism(ref):
    report = doctor(_Noisy(), ref[0], checks=["determinism", "mode"])
    det = report["determinism"]
    assert det.status == "fail"
    assert "first differ at step 1" in det.summary
    assert report["mode"].status == "warn"  # random in eval mode, too


def test_dropout_and_batchnorm_are_reported(ref):
    torch.manual_seed(0)
    model = MLP(20, [64], 2, dropout=0.3, batchnorm=True)
    report = doctor(model, ref[0], checks=["mode"])
    mode = report["mode"]
    assert mode.status == "pass"
    assert mode.evidence["dropout"] == ["3"] and mode.evidence["batchnorm"] == ["1"]
    assert mode.evidence["max_abs_diff_train_vs_eval"] > 0


def test_batchnorm_with_a_last_batch_of_one_row_warns(ref):
    (X, y), _ = ref
    torch.manual_seed(0)
    model = MLP(20, [16], 2, batchnorm=True)
    report = doctor(model, (X[:65], y[:65]), batch_size=32, checks=["mode"])
    assert report["mode"].status == "warn"
    assert "size 1" in report["mode"].summary and "drop_last" in report["mode"].fix


class _BadSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x  # wrong: d(x^2)/dx = 2x


class _GoodSquare(_BadSquare):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x


class _WithFunction(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(20, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.b(self.fn.apply(self.a(x)))


def test_gradcheck_catches_a_wrong_custom_backward(ref):
    bad = doctor(_WithFunction(_BadSquare), ref[0], gradcheck=True, checks=["gradcheck"])["gradcheck"]
    assert bad.status == "fail"
    assert bad.evidence["custom_functions"] == ["_BadSquare"]
    good = doctor(_WithFunction(_GoodSquare), ref[0], gradcheck=True, checks=["gradcheck"])["gradcheck"]
    assert good.status == "pass" and "_GoodSquare" in good.summary
    off = doctor(_WithFunction(_GoodSquare), ref[0], checks=["gradcheck"])["gradcheck"]
    assert off.status == "skip"


# -- API ---------------------------------------------------------------------------------------
def test_check_selection_and_unknown_names(ref):
    report = doctor(ref_mlp(), ref[0], checks="data")
    assert [c.id for c in report] == [i for i in CHECKS if i.startswith("data.")]
    with pytest.raises(ConfigError, match="Unknown doctor check 'overfit'"):
        doctor(ref_mlp(), ref[0], checks=["overfit"])
    with pytest.raises(ConfigError, match="Unknown loss"):
        doctor(ref_mlp(), ref[0], loss="cross_entropi")


def test_dataset_and_optimizer_instance_inputs(ref):
    from torch.utils.data import TensorDataset

    (X, y), _ = ref
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = ref_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    report = doctor(model, ds, optimizer=opt, checks=["data.target", "overfit_batch"])
    assert isinstance(report, DoctorReport)
    assert report.setup["lr"] == 0.05
    assert report["overfit_batch"].status == "pass"


def test_from_config_without_the_loader_is_a_clear_config_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("fittorch.experiment") is not None:
        pytest.skip("the config loader is present; covered by the CLI tests")
    from fittorch.doctor import from_config

    with pytest.raises(ConfigError, match="config loader"):
        from_config(tmp_path / "x.yaml")


# -- no false alarms on healthy variants -----------------------------------------------------
def test_healthy_multiclass_with_dropout_and_batchnorm(small_clf_data):
    X, y = small_clf_data
    torch.manual_seed(0)
    model = MLP(8, [32], 3, dropout=0.2, batchnorm=True)
    report = doctor(model, (X[:160], y[:160]), val=(X[160:], y[160:]), batch_size=16)
    assert report.failed == [], report.render(color=False)
    # the bias before BatchNorm gets ~no gradient by design (BN removes the mean): not a finding
    assert report["grad_flow"].status == "pass"
    assert report["mode"].status == "pass" and report["mode"].evidence["batchnorm"] == ["1"]
    assert report["init_loss"].evidence["expected"] == pytest.approx(np.log(3))


def test_binary_logits_and_nll(ref):
    (X, y), (Xv, yv) = ref
    torch.manual_seed(0)
    one_logit = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 1), nn.Flatten(0))
    report = doctor(one_logit, (X, y.astype(np.float32)), val=(Xv, yv.astype(np.float32)), loss="bce_with_logits",
                    checks=["data", "init_loss", "overfit_batch", "learning_signal"])
    assert report.failed == [], report.render(color=False)
    assert report["overfit_batch"].evidence["batch_accuracy"] == 1.0
    nll_ok = doctor(nn.Sequential(ref_mlp(), nn.LogSoftmax(dim=1)), (X, y), loss="nll", checks=["init_loss"])
    assert nll_ok["init_loss"].status == "pass"
    nll_bad = doctor(ref_mlp(), (X, y), loss="nll", checks=["init_loss"])
    assert nll_bad["init_loss"].status == "fail" and "log_softmax" in nll_bad["init_loss"].summary


# -- advice that pointed at the wrong cause (issue 19) ------------------------------------------
def test_inputs_scaled_x1000_blame_the_inputs_not_the_final_layer(ref):
    (X, y), _ = ref
    report = doctor(ref_mlp(), (X * 1000, y), checks=["init_loss"])
    check = report["init_loss"]
    assert check.status == "warn"
    assert "inputs are unscaled" in check.summary and check.evidence["input_scale"] > 100
    assert "Standardize" in check.fix and "final layer" not in check.fix


def test_lr_1000x_below_the_suggestion_warns(ref):
    report = doctor(ref_mlp(), ref[0], lr=1e-6, checks=["lr_range"])
    check = report["lr_range"]
    assert check.evidence["suggested_lr"] / 1e-6 > 100
    assert check.status == "warn" and "below the suggestion" in check.summary


def test_pixel_features_in_0_1_pass_the_scale_check():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)  # pixels scaled to [0, 1], as for an image data set
    report = doctor(MLP(64, [32], 10), (X, y), checks=["data.scale"])
    check = report["data.scale"]
    assert check.evidence["std_ratio"] > 100  # rarely-lit border pixels: the old trigger
    assert check.status == "pass" and "[0, 1]" in check.summary

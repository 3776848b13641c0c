"""compile=True and cuda_graphs=True: same training, or a clear fallback where they can't apply."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

import fittorch as ft
from fittorch import accel
from fittorch.accel import AccelerationWarning
from fittorch.errors import ConfigError

from conftest import make_mlp

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA graphs need a CUDA GPU; none on this machine")


def _fit(X, y, *, device="cpu", epochs=4, batch_size=32, **kwargs):
    trainer = ft.Trainer(make_mlp(), lr=1e-2, device=device, progress=False, seed=0, **kwargs)
    trainer.fit((X, y), val=(X, y), epochs=epochs, batch_size=batch_size)
    return trainer


def _losses(trainer):
    return trainer.history["train_loss"] + trainer.history["val_loss"]


def test_compile_gives_the_same_loss_curve(small_clf_data, tmp_path):
    """Dynamo + AOTAutograd tracing through fittorch's step; aot_eager needs no C++ compiler."""
    X, y = small_clf_data
    eager = _fit(X, y)
    compiled = _fit(X, y, compile={"backend": "aot_eager"})
    assert compiled.step.model is not compiled.model  # the step really runs the compiled module
    torch.testing.assert_close(_losses(compiled), _losses(eager), rtol=1e-4, atol=1e-5)
    compiled.save(tmp_path / "m.safetensors")
    from safetensors.torch import load_file

    keys = set(load_file(str(tmp_path / "m.safetensors")))
    assert keys == set(eager.model.state_dict())  # no "_orig_mod." prefix in saved weights


@pytest.mark.skipif(os.environ.get("FITTORCH_TEST_INDUCTOR") != "1",
                    reason="the inductor backend compiles C++ (about a minute cold on a 2-core CPU); "
                           "set FITTORCH_TEST_INDUCTOR=1 to run it")
def test_compile_with_inductor_gives_the_same_loss_curve(small_clf_data):
    X, y = small_clf_data
    eager = _fit(X, y, epochs=2)
    compiled = _fit(X, y, epochs=2, compile=True)
    torch.testing.assert_close(_losses(compiled), _losses(eager), rtol=1e-4, atol=1e-5)


def test_compile_without_a_cpp_compiler_falls_back_with_a_clear_warning(small_clf_data, monkeypatch):
    X, y = small_clf_data
    monkeypatch.setattr(accel.shutil, "which", lambda name: None)
    with pytest.warns(AccelerationWarning, match="C\\+\\+ compiler"):
        trainer = _fit(X, y, epochs=2, compile=True)
    assert trainer.step.model is trainer.model  # eager
    assert _losses(trainer) == _losses(_fit(X, y, epochs=2))  # bit-identical to a plain run


def test_cuda_graphs_off_cuda_falls_back_with_a_clear_warning(small_clf_data):
    if CUDA:
        pytest.skip("this machine has CUDA; the fallback is for CPU-only machines")
    X, y = small_clf_data
    with pytest.warns(AccelerationWarning, match="cuda_graphs=True was ignored: CUDA graphs need a CUDA device"):
        trainer = _fit(X, y, epochs=2, cuda_graphs=True)
    assert trainer.step.graphed is None
    assert _losses(trainer) == _losses(_fit(X, y, epochs=2))


def test_default_trainer_has_no_acceleration_and_no_warning(small_clf_data):
    X, y = small_clf_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccelerationWarning)
        trainer = _fit(X, y, epochs=1)
    assert trainer.step.graphed is None and trainer.step.model is trainer.model


@pytest.mark.parametrize("kwargs, match", [
    ({"compile": "yes"}, "compile='yes'"),
    ({"cuda_graphs": 1}, "cuda_graphs=1"),
])
def test_bad_acceleration_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ft.Trainer(make_mlp(), device="cpu", progress=False, **kwargs)


# -- on a GPU -----------------------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("n_rows", [192, 200])  # 200: a last partial batch that runs eagerly
def test_cuda_graphs_match_eager_training(small_clf_data, n_rows):
    X, y = small_clf_data
    X, y = X[:n_rows], y[:n_rows]
    eager = _fit(X, y, device="cuda", epochs=5)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        graphed = _fit(X, y, device="cuda", epochs=5, cuda_graphs=True)
    assert not [w for w in seen if "stream" in str(w.message)]  # eager partial batches mix no streams
    g = graphed.step.graphed
    assert g is not None and g.graph is not None and g.replays > 0
    assert g.eager_steps == (5 if n_rows % 32 else 0)
    torch.testing.assert_close(_losses(graphed), _losses(eager), rtol=1e-4, atol=1e-5)
    for a, b in zip(graphed.model.parameters(), eager.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_cuda
def test_cuda_graphs_recapture_when_the_learning_rate_changes(small_clf_data):
    X, y = small_clf_data
    trainer = _fit(X, y, device="cuda", epochs=2, cuda_graphs=True)
    first = trainer.step.graphed.graph
    for group in trainer.optimizer.param_groups:
        group["lr"] = 1e-3
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer.fit((X, y), epochs=1, batch_size=32)
    assert not [w for w in seen if "stream" in str(w.message)]  # the capture reuses no eager autograd node
    assert trainer.step.graphed.graph is not first
    assert trainer.step.graphed.lr_key == (1e-3,)


@needs_cuda
def test_cuda_graphs_fall_back_for_fp16(small_clf_data):
    with pytest.warns(AccelerationWarning, match="precision='fp16'"):
        trainer = ft.Trainer(make_mlp(), device="cuda", precision="fp16", cuda_graphs=True, progress=False)
    assert trainer.step.graphed is None

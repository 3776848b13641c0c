"""Shared fixtures: the reference data, tiny models, and a subprocess environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def _pin_threads():
    """Bits must match across runs: pin the thread count and restore it after each test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def ref_data():
    """The reference experiment's data: ((X_train, y_train), (X_test, y_test))."""
    from fittorch.demo import make_reference_data

    train, test, _ = make_reference_data()
    return train, test


@pytest.fixture
def small_clf_data():
    """200 x 8, 3 well-separated classes: trains in a fraction of a second."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 8))
    y = rng.integers(0, 3, size=200)
    X = (centers[y] + rng.normal(0, 1, size=(200, 8))).astype(np.float32)
    return X, y


@pytest.fixture
def small_reg_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    w = rng.normal(size=5).astype(np.float32)
    y = (X @ w + 0.1 * rng.normal(size=200)).astype(np.float32)
    return X, y


def make_mlp(in_features=8, hidden=16, out=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(in_features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, out))


@pytest.fixture
def mlp_factory():
    return make_mlp


@pytest.fixture
def cli_env():
    """Environment for subprocesses: this checkout's src first, one thread, no colour."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def fittorch_cmd():
    """The command that runs the CLI: this interpreter with ``-m fittorch``."""
    return [sys.executable, "-m", "fittorch"]

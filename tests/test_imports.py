"""What each entry point imports, read from ``sys.modules`` in a fresh process (never timed).

``import fittorch`` and the CLI's ``--help`` and ``runs`` import no torch; ``predict`` and
``evaluate`` build no optimizer (no ``torch._dynamo``) and import no torchmetrics or
matplotlib; a fit with the default metrics imports no torchmetrics or matplotlib.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

HEAVY = ("torch", "torch._dynamo", "torchmetrics", "matplotlib", "pandas", "sklearn", "scipy", "pydantic")

_PROBE = """
import contextlib, io, json, sys
{body}
print("\\nMODULES " + json.dumps({{m: m in sys.modules for m in {heavy!r}}}))
"""


def loaded(body: str, env, cwd=None, heavy=HEAVY) -> dict:
    """{module: imported?} after running ``body`` in a fresh interpreter."""
    code = _PROBE.format(body=textwrap.dedent(body), heavy=heavy)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return json.loads(line.removeprefix("MODULES "))


def cli(argv: list[str]) -> str:
    """Run ``fittorch ARGV`` in the probe's process (its output swallowed); fail on a non-zero exit."""
    return f"""
    from fittorch.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            rc = main({argv!r})
        except SystemExit as exc:  # --help exits through argparse
            rc = exc.code
    assert rc == 0, (rc, out.getvalue())
    """


def test_import_fittorch_is_light(cli_env):
    mods = loaded("import fittorch; fittorch.__version__; fittorch.FittorchError; fittorch.doctor", cli_env)
    assert not any(mods.values()), {m for m, v in mods.items() if v}


def test_public_names_load_on_first_use(cli_env):
    mods = loaded("""
        import fittorch as ft
        assert ft.Trainer.__name__ == "Trainer" and callable(ft.fit) and ft.callbacks.EarlyStopping
        from fittorch import MLP, load, save
        assert "Trainer" in dir(ft)
        try:
            ft.no_such_name
        except AttributeError:
            pass
        else:
            raise SystemExit("ft.no_such_name did not raise AttributeError")
    """, cli_env)
    assert mods["torch"] and not mods["torchmetrics"] and not mods["matplotlib"] and not mods["torch._dynamo"]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit", "--help"], ["predict", "--help"],
                                  ["evaluate", "--help"], ["report", "--help"], ["runs", "--help"],
                                  ["export", "--help"], ["doctor", "--help"]])
def test_help_imports_no_torch(argv, cli_env):
    mods = loaded(cli(argv), cli_env)
    assert not mods["torch"] and not mods["pandas"] and not mods["pydantic"], mods


def test_every_command_module_is_light_at_import(cli_env):
    """New commands must import heavy modules inside run(): see fittorch/cli/__init__.py."""
    mods = loaded("""
        import importlib
        from fittorch.cli import COMMANDS, build_parser
        build_parser()
        for name in COMMANDS:
            importlib.import_module(f"fittorch.cli.{name}")
    """, cli_env)
    assert not mods["torch"] and not mods["pandas"], mods


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real run directory from `fittorch fit`: a 3-class CSV, 2 epochs."""
    import pandas as pd

    from fittorch.cli import main

    root = tmp_path_factory.mktemp("imports")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["label"] = np.array(["x", "y", "z"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    df.to_csv(root / "data.csv", index=False)
    df.drop(columns=["label"]).head(20).to_csv(root / "new.csv", index=False)
    (root / "cfg.yaml").write_text("data: {source: data.csv, target: label, test_split: 0.2}\n"
                                   "model: {type: mlp, hidden: [8]}\ntrain: {epochs: 2, batch_size: 16}\n")
    assert main(["fit", str(root / "cfg.yaml"), "--out", str(root / "runs"), "--quiet"]) == 0
    return root


def test_runs_imports_no_torch(trained_run, cli_env):
    """`fittorch runs` reads run.json with the standard library: no torch, numpy, pydantic or yaml."""
    mods = loaded(cli(["runs", str(trained_run / "runs")]), cli_env, heavy=HEAVY + ("numpy", "yaml"))
    assert not any(mods.values()), {m for m, v in mods.items() if v}
    mods = loaded(cli(["runs", str(trained_run / "runs"), "--json"]), cli_env, heavy=HEAVY + ("numpy", "yaml"))
    assert not any(mods.values()), {m for m, v in mods.items() if v}


@pytest.mark.parametrize("argv", [["predict", "RUN", "new.csv"], ["evaluate", "RUN"], ["evaluate", "RUN", "data.csv"]])
def test_predict_and_evaluate_import_no_dynamo_torchmetrics_or_plotting(argv, trained_run, cli_env):
    run_dir = str(next((trained_run / "runs").iterdir()))
    mods = loaded(cli([run_dir if a == "RUN" else a for a in argv]), cli_env, cwd=trained_run)
    assert mods["torch"]  # it did load the model
    assert not mods["torch._dynamo"] and not mods["torchmetrics"] and not mods["matplotlib"], mods


def test_fit_with_default_metrics_imports_no_torchmetrics(cli_env):
    body = """
        import numpy as np
        import fittorch as ft
        X = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
        for y, loss, metrics in (((X[:, 0] > 0).astype(np.int64), "cross_entropy", ["accuracy"]),
                                 (X[:, :1].copy(), "mse", ["mse", "rmse", "mae", "r2"])):
            model = ft.MLP(3, [4], 2 if loss == "cross_entropy" else 1)
            trainer = ft.Trainer(model, loss=loss, metrics=metrics, progress=False)
            trainer.fit((X[:48], y[:48]), val=(X[48:], y[48:]), epochs=2)
            trainer.evaluate((X, y)), trainer.predict(X)
    """
    mods = loaded(body, cli_env)
    assert {m for m, v in mods.items() if v} == {"torch", "torch._dynamo"}, mods  # dynamo: torch.optim's own
    # the check can fail: another metric does load torchmetrics
    mods = loaded(body.replace('["accuracy"]', '["f1"]'), cli_env)
    assert mods["torchmetrics"]


def test_an_inference_trainer_cannot_fit():
    import torch

    import fittorch as ft
    from fittorch.errors import ConfigError

    trainer = ft.Trainer(torch.nn.Linear(3, 2), optimizer=None, progress=False)
    assert trainer.optimizer is None
    with pytest.raises(ConfigError, match="optimizer=None"):
        trainer.fit((np.zeros((8, 3), np.float32), np.zeros(8, np.int64)), epochs=1)


def test_predict_on_a_small_csv_imports_no_pandas(trained_run, cli_env):
    """A small CSV is read with the csv module (fittorch/tabular/smallcsv.py): no pandas, no pyarrow."""
    run_dir = str(next((trained_run / "runs").iterdir()))
    for argv in (["predict", run_dir, "new.csv"], ["predict", run_dir, "new.csv", "--proba", "-o", "p.csv"]):
        mods = loaded(cli(argv), cli_env, cwd=trained_run, heavy=HEAVY + ("pyarrow",))
        assert mods["torch"] and not mods["pandas"] and not mods["pyarrow"], mods
    # the check can fail: a file the fast reader leaves to pandas (a space before a number) loads it
    (trained_run / "odd.csv").write_text("a,b,c,d\n 1,2,3,4\n")
    mods = loaded(cli(["predict", run_dir, "odd.csv"]), cli_env, cwd=trained_run)
    assert mods["pandas"]


def test_evaluate_on_the_runs_own_split_imports_no_sklearn(trained_run, cli_env):
    """The held-out rows come from split.safetensors (fittorch/splitrecord.py): no re-split, so no
    scikit-learn or scipy. Without the record (a 0.2 folder) the split is made again and imports it."""
    import shutil

    run_dir = next((trained_run / "runs").iterdir())
    mods = loaded(cli(["evaluate", str(run_dir)]), cli_env, cwd=trained_run)
    assert mods["torch"] and not mods["sklearn"] and not mods["scipy"], mods
    old = trained_run / "old-run"
    shutil.copytree(run_dir, old)
    (old / "split.safetensors").unlink()
    mods = loaded(cli(["evaluate", str(old)]), cli_env, cwd=trained_run)
    assert mods["sklearn"]


def test_reading_a_config_imports_no_torch(cli_env):
    """The loss names and the task each implies live in the torch-free fittorch.task."""
    mods = loaded("""
        from fittorch.config import validate
        cfg = validate({"data": {"source": "sklearn:iris"}, "loss": "BCE_with_logits", "task": "binary"})
        assert cfg.loss == "bce_with_logits"
    """, cli_env)
    assert not mods["torch"], mods

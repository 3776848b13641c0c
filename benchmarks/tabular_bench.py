"""Raw tables: fittorch's tabular path against a reference, and embeddings against dropping a column.

    python benchmarks/tabular_bench.py penguins     # examples/configs/penguins.yaml vs sklearn HGB
    python benchmarks/tabular_bench.py embeddings   # 1,000-level column: embedded vs dropped
    python benchmarks/tabular_bench.py              # both

``penguins`` trains the example config (raw CSV, text columns, gaps) through the CLI code
path and fits sklearn's HistGradientBoostingClassifier (native categorical support, NaN
handling) on exactly the same train+val / test rows. ``embeddings`` generates a binary
task whose signal sits in one categorical column with 1,000 levels, and trains the same
MLP with that column embedded (size rule of docs/data.md) and with it dropped.
Accuracy figures only: no timing is claimed (the machine is shared).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's fittorch


def penguins(seed: int = 0) -> dict:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from fittorch.cli import main
    from fittorch.config import load_config
    from fittorch.experiment import prepare_data
    from fittorch.runs import read_run_json

    config = ROOT / "examples" / "configs" / "penguins.yaml"
    with tempfile.TemporaryDirectory() as out:
        code = main(["fit", str(config), "--out", out, "--quiet", "--set", f"seed={seed}"])
        assert code == 0, code
        ours = read_run_json(Path(out) / "penguins")["test"]["accuracy"]
    cfg = load_config(config, [f"seed={seed}"])
    _, splits = prepare_data(cfg)
    df = pd.read_csv(cfg.data.source)
    y = df.pop("species")
    for col in ("island", "sex", "year"):
        df[col] = df[col].astype("category")
    fit_rows = np.concatenate([splits.rows["train"], splits.rows["val"]])
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    hgb.fit(df.iloc[fit_rows], y.iloc[fit_rows])
    test = splits.rows["test"]
    theirs = float((hgb.predict(df.iloc[test]) == y.iloc[test]).mean())
    return {"seed": seed, "test_rows": len(test), "fittorch_mlp": round(float(ours), 4),
            "sklearn_hgb": round(theirs, 4)}


def make_levels_data(n: int = 20000, levels: int = 1000, seed: int = 0):
    """A binary target driven by a 1,000-level column (each level's own effect) plus a weak numeric one."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 2.0, levels)
    item = rng.integers(0, levels, n)
    x = rng.normal(size=(n, 2))
    logit = effect[item] + 0.5 * x[:, 0]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame({"item": [f"item{i:04d}" for i in item], "x0": x[:, 0], "x1": x[:, 1]})
    return df, y


def embeddings(seed: int = 0, epochs: int = 15) -> dict:
    import fittorch as ft
    from fittorch.tabular import TabularPreprocessor

    df, y = make_levels_data(seed=seed)
    cut = int(0.8 * len(df))
    results = {}
    for name, ignore in (("embedded", []), ("dropped", ["item"])):
        tab = TabularPreprocessor(ignore=ignore).fit(df.iloc[:cut])
        ft.seed_everything(seed)
        model = tab.make_model(out_features=2, hidden=[64])
        trainer = ft.Trainer(model, lr=0.003, progress=False, seed=seed)
        trainer.fit((df.iloc[:cut], y[:cut]), epochs=epochs, batch_size=128, preprocess=tab)
        results[name] = round(trainer.evaluate((df.iloc[cut:], y[cut:]))["accuracy"], 4)
        if name == "embedded":
            results["embedding_dim"] = model.spec["embedding_dims"][0]
    return {"seed": seed, "rows": len(df), "levels": 1000, **results}


if __name__ == "__main__":
    which = sys.argv[1:] or ["penguins", "embeddings"]
    for what in which:
        print(what, {"penguins": penguins, "embeddings": embeddings}[what]())

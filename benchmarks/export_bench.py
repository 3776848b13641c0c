"""Export figures: parity on 1,000 rows and onnxruntime vs eager torch latency, side by side.

    PYTHONPATH=examples python benchmarks/export_bench.py [--out DIR] [--rounds 7]

Trains three runs (the demo model, the digits CNN imported from examples/custom_models.py and
an imported ResidualMLP on digits), exports each to .onnx and .pt2 with `fittorch export`
(parity on 1,000 rows), then times one forward call for batch 1 and batch 1,024:

- onnxruntime on the .onnx file (CPU provider, intra-op threads = torch's thread count),
- eager torch: the same computation (standardize -> model -> softmax) as an nn.Module, no_grad,
- the .pt2 program's module() (torch.export.load),
- fittorch's Trainer.predict on the preprocessed rows (what `fittorch predict` runs after reading the
  table; the preprocessing and decoding are excluded).

Rounds alternate the four runners in a rotated order so that load from other processes hits
them alike; the figure is the median per-call time over rounds (each round: the median of
`repeats` calls). Single-threaded by default (--threads) because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def train_runs(out: Path) -> dict[str, dict]:
    from sklearn.datasets import load_digits

    from fittorch.cli import main
    from fittorch.demo import make_reference_data, run_demo

    runs = {}
    run_demo(out=out / "demo", quiet=True)  # 100 epochs, as `fittorch demo`
    (X_train, _), (X_test, _), scaler = make_reference_data()
    raw = scaler.inverse_transform(np.concatenate([X_train, X_test]))  # the demo's 1,000 rows, unscaled
    header = ",".join(f"x{i}" for i in range(raw.shape[1]))
    np.savetxt(out / "demo_rows.csv", raw, delimiter=",", header=header, comments="")
    runs["demo (MLP 20-64-2)"] = {"dir": out / "demo", "rows": str(out / "demo_rows.csv")}
    digits = str(ROOT / "examples" / "configs" / "digits.yaml")
    assert main(["fit", str(ROOT / "examples" / "configs" / "digits_cnn.yaml"), "--quiet", "--out", str(out)]) == 0
    runs["digits CNN (import)"] = {"dir": out / "digits_cnn", "rows": "sklearn:digits"}
    assert main(["fit", digits, "--quiet", "--out", str(out), "--name", "residual", "--set", "model.type=import",
                 "--set", "model.target=custom_models:ResidualMLP"]) == 0
    runs["ResidualMLP (import)"] = {"dir": out / "residual", "rows": "sklearn:digits"}
    assert len(load_digits().data) >= 1000
    return runs


def median_call(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def latency(run_dir: Path, rows: np.ndarray, rounds: int, threads: int) -> dict:
    import onnxruntime as ort
    import pandas as pd
    import torch

    from fittorch.export.sources import fold_of, head_of
    from fittorch.export.wrap import ServingModule
    from fittorch.runs import load_run

    if (run_dir / "config.yaml").exists():
        _, prep, trainer = load_run(run_dir, trust_code=True)  # the examples' own models
    else:
        from fittorch.export.sources import load_run_source

        src = load_run_source(str(run_dir), checkpoint=None, rows=None, max_rows=1)
        prep, trainer = src.prep, src.trainer
    eager = ServingModule(trainer.model.eval(), head=head_of(prep), fold=fold_of(prep)[0]).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(run_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    program = torch.export.load(str(run_dir / "model.pt2")).module()
    result = {}
    for batch in (1, 1024):
        x = np.ascontiguousarray(np.resize(rows, (batch, rows.shape[1])).astype(np.float32))
        xt = torch.from_numpy(x)
        x_model = prep.frame_to_X(pd.DataFrame(x.astype(np.float64), columns=fold_of(prep)[1]), "rows")
        runners = {
            "onnxruntime": lambda: session.run(None, {"features": x}),
            "eager torch": lambda: eager(xt),
            "pt2 module": lambda: program(xt),
            "Trainer.predict": lambda: trainer.predict(x_model),
        }
        repeats = 200 if batch == 1 else 20
        samples: dict[str, list] = {k: [] for k in runners}
        with torch.inference_mode():
            for fn in runners.values():  # warm-up
                for _ in range(5):
                    fn()
            names = list(runners)
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    samples[name].append(median_call(runners[name], repeats))
        result[f"batch {batch}"] = {k: statistics.median(v) * 1e6 for k, v in samples.items()}  # microseconds
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temp folder)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="export_bench_"))
    from fittorch.export import export_run

    figures = {"torch": torch.__version__, "threads": args.threads, "rounds": args.rounds, "models": {}}
    for name, info in train_runs(out).items():
        entry = {}
        for fmt in ("onnx", "pt2"):
            res = export_run(info["dir"], format=fmt, rows=info["rows"], max_rows=1000, trust_code=True)
            entry[f"{fmt} parity"] = {"rows": res.parity.rows, "max_abs_diff": res.parity.max_abs_diff,
                                      "per_output": res.parity.per_output, "export_seconds": round(res.seconds, 1)}
            print(f"{name:<22} {fmt:<4} {res.parity.line()}", flush=True)
        src_rows = _rows(info)
        entry["latency_us"] = latency(info["dir"], src_rows, args.rounds, args.threads)
        figures["models"][name] = entry
        for batch, values in entry["latency_us"].items():
            cells = "  ".join(f"{k} {v:9.1f} us" for k, v in values.items())
            print(f"{name:<22} {batch:<10} {cells}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def _rows(info) -> np.ndarray:
    if info["rows"].startswith("sklearn:"):
        from sklearn.datasets import load_digits

        return load_digits().data[:1000].astype(np.float32)
    return np.loadtxt(info["rows"], delimiter=",", skiprows=1, dtype=np.float32)


if __name__ == "__main__":
    sys.exit(main())

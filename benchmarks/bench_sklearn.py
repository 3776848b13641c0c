"""fittorch's scikit-learn estimators against their peers.

1. Accuracy: ``load_breast_cancer``, 5-fold stratified CV, ``Pipeline(StandardScaler, clf)``, the
   same folds for every classifier: ``TorchClassifier`` (defaults: MLP 30->64->2, Adam 1e-3,
   100 epochs, batch 32) against scikit-learn's ``MLPClassifier`` with its defaults and with
   matched settings (hidden 64, Adam 1e-3, batch 32, 100 epochs, no L2).
2. Speed: fit time on the reference experiment (make_classification 1000x20, 80/20 split,
   scaled; MLP 20->64->2, Adam 1e-3, 100 epochs, batch 32, shuffled) for ``TorchClassifier``
   against skorch's ``NeuralNetClassifier`` (``pip install skorch``, in the ``bench`` extra),
   with the plain ``fittorch.Trainer`` and a hand-written loop as references. Runs are
   interleaved and repeated; the median is reported (the machine may be shared).

    python benchmarks/bench_sklearn.py            # both parts
    python benchmarks/bench_sklearn.py --repeats 5 --threads 1 --skip-cv
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def cv_accuracy(folds: int = 5, seed: int = 0) -> dict:
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fittorch.sklearn import TorchClassifier

    X, y = load_breast_cancer(return_X_y=True)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    candidates = {
        "fittorch TorchClassifier (defaults)": TorchClassifier(device="cpu", seed=seed),
        "sklearn MLPClassifier (defaults)": MLPClassifier(random_state=seed),
        "sklearn MLPClassifier (matched)": MLPClassifier(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=1e-3,
                                                         batch_size=32, max_iter=100, alpha=0.0, random_state=seed),
    }
    results = {name: {"scores": [], "fit_time": [], "fit_cpu": []} for name in candidates}
    for train, test in cv.split(X, y):  # the same folds for every classifier
        for name, clf in candidates.items():
            pipe = make_pipeline(StandardScaler(), clone(clf))
            wall, cpu = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                pipe.fit(X[train], y[train])
            results[name]["fit_time"].append(time.perf_counter() - wall)
            results[name]["fit_cpu"].append(time.process_time() - cpu)
            results[name]["scores"].append(pipe.score(X[test], y[test]))
    return {name: {k: np.asarray(v) for k, v in r.items()} for name, r in results.items()}


def reference_fit_times(repeats: int) -> dict:
    from skorch import NeuralNetClassifier

    from fittorch import MLP, Trainer
    from fittorch.demo import make_reference_data
    from fittorch.sklearn import TorchClassifier

    (X_train, y_train), (X_test, y_test), _ = make_reference_data()
    y_train_l, y_test_l = y_train.astype(np.int64), y_test.astype(np.int64)

    def run_fittorch():
        clf = TorchClassifier(epochs=100, batch_size=32, lr=1e-3, device="cpu", seed=42)
        clf.fit(X_train, y_train_l)
        return clf.score(X_test, y_test_l)

    def run_skorch():
        torch.manual_seed(42)
        net = NeuralNetClassifier(MLP, module__in_features=20, module__hidden=(64,), module__out_features=2,
                                  criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3, max_epochs=100,
                                  batch_size=32, iterator_train__shuffle=True, train_split=None, device="cpu",
                                  verbose=0)
        net.fit(X_train, y_train_l)
        return float((net.predict(X_test) == y_test_l).mean())

    def run_trainer():
        torch.manual_seed(42)
        trainer = Trainer(MLP(20, (64,), 2), loss="cross_entropy", optimizer="adam", lr=1e-3, device="cpu",
                          seed=42, progress=False, metrics=[])
        trainer.fit((X_train, y_train_l), epochs=100, batch_size=32)
        return float((trainer.predict(X_test).argmax(1).numpy() == y_test_l).mean())

    def run_handwritten():  # the lesson's loop, on tensors, shuffled with randperm
        torch.manual_seed(42)
        model = MLP(20, (64,), 2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train_l)
        for _ in range(100):
            model.train()
            perm = torch.randperm(len(Xt))
            for i in range(0, len(Xt), 32):
                idx = perm[i:i + 32]
                loss = loss_fn(model(Xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            return float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test_l).mean())

    runs = {"fittorch TorchClassifier": run_fittorch, "skorch NeuralNetClassifier": run_skorch,
            "fittorch Trainer": run_trainer, "hand-written loop": run_handwritten}
    for fn in runs.values():  # warm-up: imports, first-call allocations
        fn()
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    accuracy = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            wall, started_cpu = time.perf_counter(), time.process_time()
            accuracy[name] = fn()
            times[name].append(time.perf_counter() - wall)
            cpu[name].append(time.process_time() - started_cpu)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "cpu_s": statistics.median(cpu[name]),
                   "accuracy": accuracy[name], "runs": t} for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every contender")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    if not args.skip_cv:
        print("\nbreast_cancer, 5-fold stratified CV (shuffle, random_state=0), StandardScaler + classifier:")
        for name, r in cv_accuracy().items():
            s = r["scores"]
            folds = " ".join(f"{v:.4f}" for v in s)
            print(f"  {name:38s} accuracy {s.mean():.4f} ± {s.std():.4f}  [{folds}]  "
                  f"fit {np.median(r['fit_time']):.2f} s/fold ({np.median(r['fit_cpu']):.2f} s CPU)")
    if not args.skip_speed:
        print(f"\nreference experiment fit (100 epochs, batch 32), median of {args.repeats}:")
        results = reference_fit_times(args.repeats)
        base, base_cpu = (results["skorch NeuralNetClassifier"][k] for k in ("median_s", "cpu_s"))
        for name, r in results.items():
            print(f"  {name:28s} wall {r['median_s']:.3f} s (min {r['min_s']:.3f}, {base / r['median_s']:.2f}x skorch)  "
                  f"CPU {r['cpu_s']:.3f} s ({base_cpu / r['cpu_s']:.2f}x skorch)  test accuracy {r['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

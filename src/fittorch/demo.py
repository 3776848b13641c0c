"""The reference experiment: the classic "complete training loop" lesson, as a product.

make_classification(1000 x 20, 2 classes) -> 80/20 split -> standardize on train only ->
MLP 20->64->ReLU->2, cross-entropy, Adam(lr=1e-3), 100 epochs, batch 32 -> test accuracy
every epoch -> metrics.csv + curves.png + model.safetensors/model.json -> reload and check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoResult:
    accuracy: float
    reloaded_accuracy: float
    train_seconds: float
    out: Path


def make_reference_data(seed: int = 42):
    """The lesson's data: standardized with a scaler fitted on the training part only."""
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)
    return (X_train, y_train), (X_test, y_test), scaler


def run_demo(*, epochs: int = 100, batch_size: int = 32, lr: float = 1e-3, seed: int = 42, device: str = "auto",
             out: str | Path = "runs/demo", quiet: bool = False, shuffle: bool = True, log=print) -> DemoResult:
    from .device import resolve_device
    from .models import MLP
    from .seeding import seed_everything
    from .serialization import load_model
    from .trainer import Trainer

    say = (lambda *a, **k: None) if quiet else log
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    say(f"Using device: {dev}")
    (X_train, y_train), (X_test, y_test), scaler = make_reference_data()
    say(f"Train: X {tuple(X_train.shape)}, y {tuple(y_train.shape)} | Test: X {tuple(X_test.shape)}, y {tuple(y_test.shape)}")

    seed_everything(seed)  # the model's initial weights come from this seed
    model = MLP(20, [64], 2)
    trainer = Trainer(model, loss="cross_entropy", optimizer="adam", lr=lr, metrics=["accuracy"],
                      device=dev, seed=seed, progress=not quiet, log_every=10)
    started = time.perf_counter()
    history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=epochs, batch_size=batch_size,
                          shuffle=shuffle)
    train_seconds = time.perf_counter() - started
    loop_seconds = sum(history["seconds"])
    history.to_csv(out / "metrics.csv")
    from .report import write_run_artifacts

    config = {"data": "make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)",
              "split": "train_test_split(test_size=0.2, random_state=42)", "standardize": "fitted on train only",
              "model": model.spec, "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": lr},
              "epochs": epochs, "batch_size": batch_size, "shuffle": shuffle, "seed": seed, "device": str(dev)}
    write_run_artifacts(trainer, out, val=(X_test, y_test), config=config, name="Reference experiment",
                        total_seconds=train_seconds)  # curves.png, confusion_matrix.png, report.html
    preprocessing = {"standardize": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}}
    trainer.save(out / "model.safetensors", metadata={"preprocessing": preprocessing,
                                                      "classes": [0, 1], "task": "multiclass"})
    accuracy = trainer.evaluate((X_test, y_test))["accuracy"]

    reloaded = load_model(out / "model.safetensors")  # a fresh instance, rebuilt from model.json
    check = Trainer(reloaded, loss="cross_entropy", optimizer=None, metrics=["accuracy"], device=dev, progress=False)
    check.load(out / "model.safetensors")
    reloaded_accuracy = check.evaluate((X_test, y_test))["accuracy"]

    say(f"Training took {train_seconds:.2f} s ({epochs} epochs, {trainer.state.global_step} steps; "
        f"{loop_seconds:.2f} s in the epochs, the rest is one-time setup: data checks, torch.optim's first import of torch._dynamo)")
    say(f"Final test accuracy:    {accuracy:.4f}")
    say(f"Reloaded test accuracy: {reloaded_accuracy:.4f} ({'identical' if reloaded_accuracy == accuracy else 'DIFFERENT'})")
    say(f"Wrote {out / 'metrics.csv'}, {out / 'curves.png'}, {out / 'confusion_matrix.png'}, {out / 'report.html'}, "
        f"{out / 'model.safetensors'}, {out / 'model.json'}")
    return DemoResult(accuracy, reloaded_accuracy, train_seconds, out)

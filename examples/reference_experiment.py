"""The reference experiment, written with fittorch's library API.

Run it with:  python examples/reference_experiment.py
It does what `fittorch demo` does: the classic "complete training loop" lesson, with
fittorch running the loop.
"""

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

import fittorch as ft

# 1. Data: 1000 samples x 20 features, 2 classes; 80/20 split; scaler fitted on train only.
X, y = make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train).astype(np.float32)
X_test = scaler.transform(X_test).astype(np.float32)


# 2. Model: the lesson's SimpleNN, 20 -> 64 -> ReLU -> 2.
class SimpleNN(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


ft.seed_everything(42)
model = SimpleNN(20, 64, 2)

# 3. Loss, optimizer and the loop: fittorch runs forward, loss, zero_grad, backward, step,
#    and evaluates on the test set after every epoch in eval mode without gradients.
trainer = ft.Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3,
                     metrics=["accuracy"], device="auto", seed=42)
history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=100, batch_size=32)

# 4. Curves and metrics.
out = Path("runs/example")
out.mkdir(parents=True, exist_ok=True)
history.to_csv(out / "metrics.csv")
history.plot(out / "curves.png")
print(f"Final test accuracy: {history[-1]['val_accuracy']:.4f}")

# 5. Save, reload into a fresh instance, and check the accuracy is identical.
trainer.save(out / "model.safetensors")
fresh = SimpleNN(20, 64, 2)
ft.load(out / "model.safetensors", model=fresh)
with torch.no_grad():
    fresh.eval()
    pred = fresh(torch.from_numpy(X_test)).argmax(1).numpy()
print(f"Reloaded model accuracy: {(pred == y_test).mean():.4f}")

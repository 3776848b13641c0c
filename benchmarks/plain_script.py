"""The lesson's complete script, doing the same job as ``fittorch demo``.

Data, standardize, train the 20-64-2 MLP for 100 epochs with a per-epoch test accuracy,
plot the curves to a PNG, save the weights, reload them and check the accuracy. It is
the lesson's code with ``plt.show()`` replaced by ``savefig`` so it runs headless.

    python benchmarks/plain_script.py --out /tmp/plain
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402, F401
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.optim as optim  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from tqdm import tqdm  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="runs/plain")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(f"Using device: {device}")


class SimpleNN(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim):
        super(SimpleNN, self).__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


X, y = make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)
X_train_tensor = torch.FloatTensor(X_train).to(device)
y_train_tensor = torch.LongTensor(y_train).to(device)
X_test_tensor = torch.FloatTensor(X_test).to(device)
y_test_tensor = torch.LongTensor(y_test).to(device)

model = SimpleNN(input_dim=20, hidden_dim=64, output_dim=2).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)
num_epochs, batch_size = 100, 32
train_losses, test_accuracies = [], []

for epoch in tqdm(range(num_epochs), desc="Training"):
    model.train()
    epoch_loss, n_batches = 0, 0
    for i in range(0, len(X_train_tensor), batch_size):
        X_batch = X_train_tensor[i:i + batch_size]
        y_batch = y_train_tensor[i:i + batch_size]
        outputs = model(X_batch)
        loss = criterion(outputs, y_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item()
        n_batches += 1
    avg_loss = epoch_loss / n_batches
    train_losses.append(avg_loss)
    model.eval()
    with torch.no_grad():
        test_outputs = model(X_test_tensor)
        _, predicted = torch.max(test_outputs, 1)
        accuracy = (predicted == y_test_tensor).float().mean().item()
        test_accuracies.append(accuracy)
    if (epoch + 1) % 10 == 0:
        print(f"\nEpoch [{epoch+1}/{num_epochs}], Loss: {avg_loss:.4f}, Test Acc: {accuracy:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(14, 5))
axes[0].plot(train_losses, label="Train Loss")
axes[0].set_xlabel("Epoch")
axes[0].legend()
axes[1].plot(test_accuracies, label="Test Accuracy", color="orange")
axes[1].set_xlabel("Epoch")
axes[1].legend()
plt.tight_layout()
plt.savefig(os.path.join(args.out, "curves.png"))

torch.save(model.state_dict(), os.path.join(args.out, "model.pth"))
loaded_model = SimpleNN(input_dim=20, hidden_dim=64, output_dim=2).to(device)
loaded_model.load_state_dict(torch.load(os.path.join(args.out, "model.pth"), weights_only=True))
loaded_model.eval()
with torch.no_grad():
    _, loaded_predicted = torch.max(loaded_model(X_test_tensor), 1)
    loaded_accuracy = (loaded_predicted == y_test_tensor).float().mean().item()
print(f"Loaded model accuracy: {loaded_accuracy:.4f}")
print(f"Original model accuracy: {test_accuracies[-1]:.4f}")

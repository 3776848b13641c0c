"""Build the lesson notebooks, English and Korean, from one source (and execute them).

    python examples/notebooks/build.py            # write training-loop.ipynb and training-loop.ko.ipynb
    python examples/notebooks/build.py --execute  # ... and run them top to bottom (outputs saved)

Each section of the lesson (../../shared/seed/training-loop-lesson.txt, in Korean) shows the
plain PyTorch first, then the same in fittorch, with a sentence on what fittorch guarantees.
The code cells are the same in both languages; only the prose and comments are translated.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# Code comments in the Korean notebook: the English comment -> its translation (the code is shared).
KO_COMMENTS = {
    "# z = sum of x^2": "# z = Σx^2",
    "# backward() ADDS into .grad: a second call accumulates": "# backward()는 .grad에 더합니다: 두 번 호출하면 누적됩니다",
    '"""Input (input_dim) -> Hidden (hidden_dim) -> Output (output_dim)"""':
        '"""간단한 2-layer 신경망: Input (input_dim) → Hidden (hidden_dim) → Output (output_dim)"""',
    "super().__init__()\n": "super().__init__()  # 부모 클래스 초기화 (필수!)\n",
    "# = LogSoftmax + NLLLoss: it takes raw logits": "# = LogSoftmax + NLLLoss: softmax 전의 logits를 받습니다",
    "# batch 4, classes 5": "# 배치 4, 클래스 5",
    "# class indices": "# 정답 클래스 (class indices)",
    "# fitted on the training part only": "# 훈련 데이터에만 맞춥니다",
    "model.train()\n": "model.train()  # 훈련 모드 (Dropout, BatchNorm에 영향)\n",
    "# 2. backward": "# 2. Backward: 이전 gradient 제거",
    "# (a host sync every step)": "# (매 step마다 host sync)",
    "model.eval()\n    with torch.no_grad():": "model.eval()  # 평가 모드\n    with torch.no_grad():  # gradient 계산 안 함",
    "# the lesson's data, below": "# 아래 5절의 강의 데이터",
    "# softmax twice": "# softmax가 두 번",
    "# rebuild by hand": "# 직접 다시 만들기",
    "# files written by this notebook go here": "# 이 노트북이 쓰는 파일은 여기에",
}

# (kind, English, Korean). Code is shared by both notebooks (comments translated by KO_COMMENTS).
CELLS = [
    ("md", """# The PyTorch training loop, by hand and with fittorch

This is the classic lesson on the training loop: autograd, `nn.Module`, losses, optimizers, the complete loop,
evaluation, curves, saving and loading, and the checklist of pitfalls. Each section shows the lesson's plain
PyTorch first, then the same thing with [fittorch](../../README.md), and says what fittorch guarantees.

The data is small and the runs are short, so the whole notebook runs in well under a minute on a CPU.""",
     """# PyTorch 훈련 루프: 직접 작성하기와 fittorch로 작성하기

훈련 루프의 기본 강의입니다: Autograd, `nn.Module`, Loss function, Optimizer, 완전한 훈련 루프, 평가, 학습 곡선,
모델 저장과 로드, 그리고 주의사항 체크리스트. 각 절은 먼저 강의의 순수 PyTorch 코드를 보여 주고, 이어서 같은 일을
[fittorch](../../README.ko.md)로 하며, fittorch가 무엇을 보장하는지 한 문장으로 설명합니다.

데이터는 작고 훈련은 짧아서, 노트북 전체가 CPU에서 1분도 걸리지 않습니다."""),
    ("code", """import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

import fittorch as ft

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
workdir = tempfile.mkdtemp()  # files written by this notebook go here
print(f"Using device: {device}")""", None),
    ("md", "## 1. Autograd\n\n### Plain PyTorch", "## 1. Autograd - 자동 미분\n\n### 순수 PyTorch"),
    ("code", """x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
z = (x ** 2).sum()  # z = sum of x^2
z.backward()        # dz/dx
print(f"dz/dx = {x.grad}, expected 2x = {2 * x.data}")

# backward() ADDS into .grad: a second call accumulates
z2 = (x ** 2).sum()
z2.backward()
print(f"after a 2nd backward (accumulated): {x.grad}")
x.grad.zero_()
print(f"after .zero_(): {x.grad}")""", None),
    ("md", """### With fittorch

You never call `backward()` or `zero_grad()` yourself: the train step does, in a short function you can read.
**fittorch guarantees** that the gradients are cleared before every optimizer step (they only accumulate
across micro-batches when you ask for it with `accumulate_steps=k`, with the loss scaled so the result equals one
big batch).""", """### fittorch로

`backward()`와 `zero_grad()`를 직접 호출하지 않습니다: 짧고 읽기 쉬운 함수인 train step이 호출합니다.
**fittorch는 보장합니다**: 모든 optimizer step 전에 gradient를 초기화합니다 (`accumulate_steps=k`로 요청할 때만
micro-batch 사이에 누적되며, 이때 loss를 조정해 큰 배치 하나와 같은 결과가 됩니다)."""),
    ("code", """import inspect

from fittorch import step

source = inspect.getsource(step.Step.train_step)
print(source[source.index("# 1. Forward"):source.index("# 4.")])""", None),
    ("md", "## 2. `nn.Module`\n\n### Plain PyTorch", "## 2. 신경망 정의 (`nn.Module`)\n\n### 순수 PyTorch"),
    ("code", """class SimpleNN(nn.Module):
    \"\"\"Input (input_dim) -> Hidden (hidden_dim) -> Output (output_dim)\"\"\"

    def __init__(self, input_dim, hidden_dim, output_dim):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


model = SimpleNN(input_dim=10, hidden_dim=20, output_dim=2)
for name, param in model.named_parameters():
    print(f"{name}: {tuple(param.shape)}")
print(f"output shape: {tuple(model(torch.randn(32, 10)).shape)}")""", None),
    ("md", """### With fittorch

Any `nn.Module` trains as it is; `ft.MLP` is a ready plain `nn.Module` for tabular data, and `ft.model_summary`
shows each layer's output shape and parameter count. **fittorch guarantees** that your model is used unchanged
(no wrapper class to inherit from), and that it is moved to the training device together with the data.""",
     """### fittorch로

어떤 `nn.Module`이든 그대로 훈련됩니다. `ft.MLP`는 표 형식 데이터를 위한 평범한 `nn.Module`이고,
`ft.model_summary`는 각 layer의 출력 shape과 파라미터 수를 보여 줍니다. **fittorch는 보장합니다**: 모델을 바꾸지
않고 그대로 사용하며 (상속해야 할 wrapper 클래스가 없습니다), 모델과 데이터를 같은 device로 옮깁니다."""),
    ("code", """ft.model_summary(SimpleNN(10, 20, 2), torch.zeros(1, 10))""", None),
    ("md", "## 3. Loss functions\n\n### Plain PyTorch", "## 3. Loss Function\n\n### 순수 PyTorch"),
    ("code", """criterion = nn.CrossEntropyLoss()  # = LogSoftmax + NLLLoss: it takes raw logits
logits = torch.randn(4, 5)           # batch 4, classes 5
targets = torch.tensor([0, 2, 1, 4])  # class indices
print(f"cross-entropy: {criterion(logits, targets).item():.4f}")
print(f"MSE: {nn.MSELoss()(torch.randn(4, 1), torch.randn(4, 1)).item():.4f}")""", None),
    ("md", """### With fittorch

A loss is a name (`"cross_entropy"`, `"bce_with_logits"`, `"mse"`, ...), a loss module or any function.
**fittorch guarantees** that the targets are checked against the loss and the model's output *before any compute*:
here three classes meet a model with two outputs, and the error says what it saw and how to fix it.""",
     """### fittorch로

Loss는 이름(`"cross_entropy"`, `"bce_with_logits"`, `"mse"`, ...), loss module, 또는 임의의 함수입니다.
**fittorch는 보장합니다**: 계산을 시작하기 *전에* 정답(target)을 loss와 모델 출력에 맞는지 검사합니다. 아래에서는
클래스가 3개인데 모델의 출력은 2개이고, 오류 메시지가 무엇을 보았는지와 고치는 방법을 알려 줍니다."""),
    ("code", """from fittorch.demo import make_reference_data

(X_train, y_train), (X_test, y_test), scaler = make_reference_data()  # the lesson's data, below
try:
    ft.Trainer(ft.MLP(20, [64], 2), loss="cross_entropy", progress=False).fit(
        (X_train, np.arange(len(X_train)) % 3), epochs=1)
except ft.DataError as err:
    print(f"DataError: {err}")""", None),
    ("md", "## 4. Optimizers\n\n### Plain PyTorch", "## 4. Optimizer\n\n### 순수 PyTorch"),
    ("code", """model = SimpleNN(10, 20, 2)
optimizer = optim.Adam(model.parameters(), lr=0.001)
print(optimizer)
# optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
# optim.AdamW(model.parameters(), lr=0.001, weight_decay=0.01)""", None),
    ("md", """### With fittorch

Name the optimizer and its learning rate (`optimizer="adamw", lr=1e-3, optimizer_kwargs={"weight_decay": 0.01}`),
or pass your own instance. **fittorch guarantees** the fastest implementation torch has for your device (fused or
foreach kernels), and refuses contradictory settings instead of ignoring one silently:""",
     """### fittorch로

Optimizer 이름과 learning rate를 적거나 (`optimizer="adamw", lr=1e-3, optimizer_kwargs={"weight_decay": 0.01}`),
직접 만든 인스턴스를 넘깁니다. **fittorch는 보장합니다**: device에서 가장 빠른 구현(fused 또는 foreach)을 쓰고,
서로 모순되는 설정은 조용히 무시하지 않고 거부합니다:"""),
    ("code", """trainer = ft.Trainer(SimpleNN(10, 20, 2), optimizer="adamw", lr=1e-3,
                     optimizer_kwargs={"weight_decay": 0.01}, progress=False)
print(type(trainer.optimizer).__name__, trainer.optimizer.defaults["lr"], trainer.optimizer.defaults["weight_decay"])
try:
    model = SimpleNN(10, 20, 2)
    ft.Trainer(model, optimizer=optim.SGD(model.parameters(), lr=0.01), lr=0.5)
except ft.ConfigError as err:
    print(f"ConfigError: {err}")""", None),
    ("md", """## 5. The complete training loop

### Plain PyTorch

The lesson's data: `make_classification` (1000 × 20, 2 classes), an 80/20 split, a scaler fitted on the training
part only. Then the loop: forward, loss, `zero_grad`, `backward`, `step`; `train()` and `eval()`; `no_grad` for
evaluation. (30 epochs here instead of 100, to keep the notebook fast.)""",
     """## 5. 완전한 훈련 루프

### 순수 PyTorch

강의의 데이터: `make_classification` (1000 × 20, 클래스 2개), 80/20 분할, 훈련 데이터에만 맞춘 scaler.
그리고 루프: forward, loss, `zero_grad`, `backward`, `step`; `train()`과 `eval()`; 평가에는 `no_grad`.
(노트북을 빠르게 하려고 100 epoch 대신 30 epoch만 훈련합니다.)"""),
    ("code", """from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

X, y = make_classification(n_samples=1000, n_features=20, n_classes=2, random_state=42)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(X_tr)  # fitted on the training part only
X_train_tensor = torch.FloatTensor(scaler.transform(X_tr)).to(device)
y_train_tensor = torch.LongTensor(y_tr).to(device)
X_test_tensor = torch.FloatTensor(scaler.transform(X_te)).to(device)
y_test_tensor = torch.LongTensor(y_te).to(device)

torch.manual_seed(42)
model = SimpleNN(input_dim=20, hidden_dim=64, output_dim=2).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)
num_epochs, batch_size = 30, 32
train_losses, test_accuracies = [], []

for epoch in tqdm(range(num_epochs), desc="Training"):
    model.train()
    epoch_loss, n_batches = 0.0, 0
    for i in range(0, len(X_train_tensor), batch_size):
        X_batch, y_batch = X_train_tensor[i:i + batch_size], y_train_tensor[i:i + batch_size]
        outputs = model(X_batch)           # 1. forward
        loss = criterion(outputs, y_batch)
        optimizer.zero_grad()              # 2. backward
        loss.backward()
        optimizer.step()                   # 3. update
        epoch_loss += loss.item()          # (a host sync every step)
        n_batches += 1
    train_losses.append(epoch_loss / n_batches)
    model.eval()
    with torch.no_grad():
        predicted = model(X_test_tensor).argmax(1)
        test_accuracies.append((predicted == y_test_tensor).float().mean().item())
print(f"final test accuracy: {test_accuracies[-1]:.4f}")""", None),
    ("md", """### With fittorch

The same experiment in one call. In a notebook you get a progress bar and a live view: the table of the last epochs
and the loss/accuracy curves, redrawn in place as epochs end (at most once a second; it reads only the epoch's
already-computed row, never a per-step value). **fittorch guarantees** `zero_grad` before every step, train mode
for training and eval mode without gradients for validation, one device for model and data, inputs validated
before any compute, and one host sync per epoch (the loss is read once, not at every step).""",
     """### fittorch로

같은 실험을 한 번의 호출로 합니다. 노트북에서는 progress bar와 라이브 뷰가 나타납니다: 최근 epoch의 표와
loss/accuracy 곡선이 epoch가 끝날 때마다 제자리에서 다시 그려집니다 (최대 1초에 한 번; 이미 계산된 epoch의 값만
읽고, step마다 값을 읽지 않습니다). **fittorch는 보장합니다**: 매 step 전 `zero_grad`, 훈련은 train 모드로, 검증은
gradient 없이 eval 모드로, 모델과 데이터는 같은 device에, 계산 전에 입력 검증, 그리고 epoch당 한 번의 host sync
(loss를 step마다가 아니라 한 번만 읽습니다)."""),
    ("code", """ft.seed_everything(42)
trainer = ft.Trainer(ft.MLP(20, [64], 2), loss="cross_entropy", optimizer="adam", lr=1e-3,
                     metrics=["accuracy"], seed=42, log_every=0)
history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=30, batch_size=32)""", None),
    ("md", "## 6. Evaluation\n\n### Plain PyTorch", "## 6. 평가\n\n### 순수 PyTorch"),
    ("code", """model.eval()
with torch.no_grad():
    accuracy = (model(X_test_tensor).argmax(1) == y_test_tensor).float().mean().item()
print(f"test accuracy: {accuracy:.4f}")""", None),
    ("md", """### With fittorch

`evaluate` returns a dict of the loss and the metrics (a table in a notebook); `predict(labels=True)` gives class
labels. **fittorch guarantees** eval mode and no autograd graph during evaluation, and puts the model back in
the mode it was in.""", """### fittorch로

`evaluate`는 loss와 metric의 dict를 돌려줍니다 (노트북에서는 표로 보입니다). `predict(labels=True)`는 클래스
레이블을 줍니다. **fittorch는 보장합니다**: 평가 중에는 eval 모드이고 autograd 그래프를 만들지 않으며, 끝나면
모델을 원래 모드로 되돌립니다."""),
    ("code", """print("labels of the first 8 test rows:", trainer.predict(X_test[:8], labels=True))
trainer.evaluate((X_test, y_test))""", None),
    ("md", "## 7. Curves\n\n### Plain PyTorch", "## 7. 학습 곡선 시각화\n\n### 순수 PyTorch"),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(train_losses, label="Train loss")
axes[0].set_xlabel("Epoch")
axes[0].set_title("Training loss")
axes[1].plot(test_accuracies, label="Test accuracy", color="orange")
axes[1].set_xlabel("Epoch")
axes[1].set_title("Test accuracy")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()""", None),
    ("md", """### With fittorch

`history.plot()` draws train against validation for the loss and every metric, and marks the best epoch of the
run's monitor (here `val_loss`), the same mark as the `curves.png` and `report.html` of a command-line run. It is
shown once, also as a cell's last line. The `History` itself shows as a table with the best epoch highlighted.
**fittorch guarantees** that every curve, table and file of a run reads from this one record.""",
     """### fittorch로

`history.plot()`은 loss와 모든 metric에 대해 train과 validation을 함께 그리고, run의 monitor(여기서는
`val_loss`)가 가장 좋았던 epoch를 표시합니다. 명령줄 실행의 `curves.png`, `report.html`과 같은 표시입니다.
셀의 마지막 줄이어도 그림은 한 번만 나옵니다. `History` 자체는 가장 좋은 epoch를 강조한 표로 보입니다.
**fittorch는 보장합니다**: run의 모든 곡선, 표, 파일은 이 하나의 기록에서 읽습니다."""),
    ("code", """history.plot()""", None),
    ("code", """history""", None),
    ("md", "## 8. Saving and loading\n\n### Plain PyTorch", "## 8. 모델 저장 및 로드\n\n### 순수 PyTorch"),
    ("code", """path = os.path.join(workdir, "model.pth")
torch.save(model.state_dict(), path)
loaded_model = SimpleNN(input_dim=20, hidden_dim=64, output_dim=2).to(device)  # rebuild by hand
loaded_model.load_state_dict(torch.load(path, weights_only=True))
loaded_model.eval()
with torch.no_grad():
    loaded_accuracy = (loaded_model(X_test_tensor).argmax(1) == y_test_tensor).float().mean().item()
print(f"loaded: {loaded_accuracy:.4f}, original: {accuracy:.4f}")""", None),
    ("md", """### With fittorch

`trainer.save` writes the weights as safetensors plus a JSON description; `ft.load` rebuilds a fresh model from
it (for `ft.MLP`, no class to import). **fittorch guarantees** no pickle anywhere (a weights file cannot run code
when loaded) and that the reloaded model gives identical results.""",
     """### fittorch로

`trainer.save`는 weight를 safetensors로, 모델 설명을 JSON으로 저장합니다. `ft.load`는 그것으로 새 모델을
다시 만듭니다 (`ft.MLP`는 클래스를 import할 필요도 없습니다). **fittorch는 보장합니다**: 어디에도 pickle을 쓰지
않으며 (weight 파일을 불러올 때 코드가 실행될 수 없습니다), 다시 불러온 모델은 똑같은 결과를 냅니다."""),
    ("code", """path = trainer.save(os.path.join(workdir, "model.safetensors"))
reloaded = ft.load(path)
check = ft.Trainer(reloaded, metrics=["accuracy"], progress=False)
check.load(path)
same = check.evaluate((X_test, y_test))["accuracy"] == trainer.evaluate((X_test, y_test))["accuracy"]
print(f"{type(reloaded).__name__} reloaded from {os.path.basename(str(path))}; identical accuracy: {same}")""",
     None),
    ("md", """## 9. The pitfalls checklist

### Plain PyTorch: remember each item yourself

1. Prepare the data (tensors, scaled with statistics of the training part only)
2. Define the model (`nn.Module`)
3. Choose the loss (raw logits into `CrossEntropyLoss`: no softmax before it)
4. Choose the optimizer and a learning rate that fits
5. In the loop: `optimizer.zero_grad()`, forward, loss, `loss.backward()`, `optimizer.step()`
6. Evaluate with `model.eval()` and `torch.no_grad()`
7. Keep model and data on the same device
8. Save and load the `state_dict`""", """## 9. 주의사항 체크리스트

### 순수 PyTorch: 모든 항목을 직접 기억해야 합니다

1. 데이터 준비 (Tensor 변환, 훈련 데이터의 통계로만 정규화)
2. 모델 정의 (`nn.Module` 상속)
3. Loss function 선택 (`CrossEntropyLoss`에는 softmax 전의 logits: 앞에 softmax를 두지 않기)
4. Optimizer와 알맞은 learning rate 선택
5. 훈련 루프: `optimizer.zero_grad()`, Forward, Loss 계산, `loss.backward()`, `optimizer.step()`
6. 평가: `model.eval()` + `torch.no_grad()`
7. 모델과 데이터를 같은 device에
8. `state_dict` 저장과 로드"""),
    ("md", """### With fittorch

Items 5 to 8 are built in (see the guarantees above). For the others, `ft.doctor` checks a setup in seconds before
you spend the compute: scaled features, leakage between train and validation, the loss at init (a softmax before
cross-entropy), gradient flow, whether one batch can be memorized, train/eval mode. **fittorch guarantees** that
your model is never changed by the doctor (every check works on a copy), and every warning comes with its fix.""",
     """### fittorch로

5번부터 8번까지는 내장되어 있습니다 (위의 보장을 보세요). 나머지는 `ft.doctor`가 계산을 쓰기 전에 몇 초 만에
검사합니다: feature 정규화, train과 validation 사이의 데이터 누수, 초기 loss (cross-entropy 앞의 softmax),
gradient 흐름, 배치 하나를 외울 수 있는지, train/eval 모드. **fittorch는 보장합니다**: doctor는 모델을 절대 바꾸지
않고 (모든 검사는 복사본으로 합니다), 모든 경고에는 고치는 방법이 함께 나옵니다."""),
    ("code", """torch.manual_seed(0)
mistake = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2), nn.Softmax(dim=1))  # softmax twice
ft.doctor(mistake, (X_train, y_train), val=(X_test, y_test), loss="cross_entropy", lr=1e-3,
          checks=["data", "init_loss", "grad_flow", "overfit_batch", "mode"])""", None),
    ("md", """## Next

- The same experiment from a YAML file, with a run folder and an HTML report: `fittorch fit` ([CLI](../../docs/cli.md)).
- Compare two runs on one page: `fittorch runs --compare runs/a runs/b`.""",
     """## 다음 단계

- 같은 실험을 YAML 파일로, run 폴더와 HTML 리포트와 함께: `fittorch fit` ([CLI](../../docs/cli.md)).
- 두 run을 한 페이지에서 비교: `fittorch runs --compare runs/a runs/b`."""),
]


def korean_comments(code: str) -> str:
    for en, ko in KO_COMMENTS.items():
        code = code.replace(en, ko)
    return code


def build(lang: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, en, ko in CELLS:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(en if lang == "en" else ko))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(en if lang == "en" else korean_comments(en)))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{lang}-{i:02d}"
    return nb


PATHS = {"en": HERE / "training-loop.ipynb", "ko": HERE / "training-loop.ko.ipynb"}


def main(argv: list[str]) -> None:
    for lang, path in PATHS.items():
        nb = build(lang)
        if "--execute" in argv:
            from nbclient import NotebookClient

            NotebookClient(nb, timeout=600, kernel_name=argv[argv.index("--kernel") + 1] if "--kernel" in argv
                           else "python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])

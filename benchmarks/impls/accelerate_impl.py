"""Hugging Face Accelerate: the usual loop with accelerator.prepare and accelerator.backward."""

import torch

from impls._clock import Clock


def run(w):
    from accelerate import Accelerator
    from torch.utils.data import DataLoader, TensorDataset

    model = w.model()
    clock = Clock()
    accelerator = Accelerator(cpu=True)
    train = DataLoader(TensorDataset(torch.from_numpy(w.X_train), torch.from_numpy(w.y_train)),
                       batch_size=w.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(torch.from_numpy(w.X_val), torch.from_numpy(w.y_val)), batch_size=1024)
    optimizer = torch.optim.Adam(model.parameters(), lr=w.lr)
    model, optimizer, train, val = accelerator.prepare(model, optimizer, train, val)
    criterion = torch.nn.CrossEntropyLoss()
    for _ in range(w.epochs):
        model.train()
        for x, y in train:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
        model.eval()
        correct, count = 0, 0
        with torch.no_grad():
            for x, y in val:
                pred = model(x).argmax(1)
                pred, y = accelerator.gather_for_metrics((pred, y))
                correct += (pred == y).sum().item()
                count += len(y)
        acc = correct / count
    return clock.stop(), acc

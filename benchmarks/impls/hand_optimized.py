"""The hand-optimized loop: tensors in memory, a shuffled copy per epoch, contiguous slices,
no per-step ``.item()``, fused Adam, ``zero_grad(set_to_none=True)``; one host sync per epoch."""


import torch

from impls._clock import Clock


def run(w):
    device = torch.device(w.device)
    model = w.model().to(device)
    clock = Clock()
    X, y = torch.from_numpy(w.X_train).to(device), torch.from_numpy(w.y_train).to(device)
    Xv, yv = torch.from_numpy(w.X_val).to(device), torch.from_numpy(w.y_val).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=w.lr, fused=True)
    criterion = torch.nn.CrossEntropyLoss()
    n, bs = len(X), w.batch_size
    gen = torch.Generator().manual_seed(0)  # the permutation is drawn on the CPU
    for _ in range(w.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        perm = perm.to(device)
        Xs, ys = X[perm], y[perm]
        losses = []
        for i in range(0, n, bs):
            loss = criterion(model(Xs[i:i + bs]), ys[i:i + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        train_loss = torch.stack(losses).mean().item()  # noqa: F841 - the epoch's one sync
        model.eval()
        with torch.no_grad():
            correct = torch.zeros((), dtype=torch.long, device=device)
            for i in range(0, len(Xv), 1024):
                correct += (model(Xv[i:i + 1024]).argmax(1) == yv[i:i + 1024]).sum()
            acc = correct.item() / len(Xv)
    return clock.stop(), acc

"""The plain hand-written loop from the lesson: in stored order, ``loss.item()`` every step,
default Adam, validation on the whole set after every epoch."""


import torch

from impls._clock import Clock


def run(w):
    device = torch.device(w.device)  # the lesson: everything .to(device) once, up front
    model = w.model().to(device)
    clock = Clock()
    X_train_tensor = torch.FloatTensor(w.X_train).to(device)
    y_train_tensor = torch.LongTensor(w.y_train).to(device)
    X_test_tensor = torch.FloatTensor(w.X_val).to(device)
    y_test_tensor = torch.LongTensor(w.y_val).to(device)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=w.lr)
    batch_size = w.batch_size
    for _epoch in range(w.epochs):
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
        model.eval()
        with torch.no_grad():
            test_outputs = model(X_test_tensor)
            _, predicted = torch.max(test_outputs, 1)
            accuracy = (predicted == y_test_tensor).float().mean().item()
    return clock.stop(), accuracy

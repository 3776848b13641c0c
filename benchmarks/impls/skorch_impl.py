"""skorch's NeuralNetClassifier with a predefined validation split."""

import torch

from impls._clock import Clock


def run(w):
    from skorch import NeuralNetClassifier
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    model = w.model()
    clock = Clock()
    net = NeuralNetClassifier(model, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=w.lr,
                              max_epochs=w.epochs, batch_size=w.batch_size, iterator_train__shuffle=True,
                              train_split=predefined_split(Dataset(w.X_val, w.y_val)), device="cpu", verbose=0)
    net.fit(w.X_train, w.y_train)
    seconds = clock.stop()
    return seconds, float(net.history[-1, "valid_acc"])

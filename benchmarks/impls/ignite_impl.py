"""PyTorch-Ignite: create_supervised_trainer/evaluator with its Accuracy metric."""

import torch

from impls._clock import Clock


def run(w):
    from ignite.engine import Events, create_supervised_evaluator, create_supervised_trainer
    from ignite.metrics import Accuracy
    from torch.utils.data import DataLoader, TensorDataset

    model = w.model()
    clock = Clock()
    train = DataLoader(TensorDataset(torch.from_numpy(w.X_train), torch.from_numpy(w.y_train)),
                       batch_size=w.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(torch.from_numpy(w.X_val), torch.from_numpy(w.y_val)), batch_size=1024)
    optimizer = torch.optim.Adam(model.parameters(), lr=w.lr)
    criterion = torch.nn.CrossEntropyLoss()
    trainer = create_supervised_trainer(model, optimizer, criterion)
    evaluator = create_supervised_evaluator(model, metrics={"accuracy": Accuracy()})
    result = {}

    @trainer.on(Events.EPOCH_COMPLETED)
    def _validate(engine):
        evaluator.run(val)
        result["acc"] = evaluator.state.metrics["accuracy"]

    trainer.run(train, max_epochs=w.epochs)
    return clock.stop(), result["acc"]

"""PyTorch Lightning as its docs show it: a LightningModule, DataLoaders, Trainer.fit."""

import logging
import warnings

import torch

from impls._clock import Clock


def run(w):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    class Module(L.LightningModule):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.criterion = torch.nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = self.criterion(self.net(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            acc = (self.net(x).argmax(1) == y).float().mean()
            self.log("val_acc", acc, on_step=False, on_epoch=True)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=w.lr)

    model = w.model()
    clock = Clock()
    train = DataLoader(TensorDataset(torch.from_numpy(w.X_train), torch.from_numpy(w.y_train)),
                       batch_size=w.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(torch.from_numpy(w.X_val), torch.from_numpy(w.y_val)), batch_size=1024)
    trainer = L.Trainer(max_epochs=w.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0)
    trainer.fit(Module(model), train, val)
    seconds = clock.stop()
    return seconds, float(trainer.callback_metrics["val_acc"])

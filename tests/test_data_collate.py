"""fit(..., collate_fn=...): variable-length items, the collate error, exact mid-epoch resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import fittorch as ft


class Sequences(Dataset):
    """Sequences of 3..10 steps; the label is whether their sum is positive."""

    def __init__(self, n=96, seed=0):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(3, 11, (n,), generator=g)
        self.items = [torch.randn(int(k), 2, generator=g) + 0.3 * (1 if i % 2 else -1) for i, k in enumerate(lengths)]
        self.labels = [int(i % 2) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i], self.labels[i]


def pad_batch(items):
    seqs, labels = zip(*items)
    lengths = torch.tensor([len(s) for s in seqs])
    padded = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    return {"x": padded, "lengths": lengths}, torch.tensor(labels)


class MeanPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Linear(2, 2)

    def forward(self, x, lengths):
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).float()
        pooled = (x * mask[..., None]).sum(1) / lengths[:, None]
        return self.f(pooled)


def test_variable_length_items_train_with_a_collate_fn():
    t = ft.Trainer(MeanPool(), lr=5e-2, progress=False)
    h = t.fit(Sequences(), val=Sequences(48, seed=1), epochs=10, batch_size=16, collate_fn=pad_batch)
    assert h[-1]["val_accuracy"] > 0.8


def test_without_collate_fn_the_error_names_the_item_shapes_and_the_fix():
    t = ft.Trainer(MeanPool(), progress=False)
    with pytest.raises(ft.DataError) as err:
        t.fit(Sequences(), epochs=1, batch_size=16)
    msg = str(err.value)
    assert "Could not collate 2 Dataset items into a batch (item 0: ((7, 2), 'int'); item 1: ((10, 2), 'int'))" in msg
    assert "collate_fn that pads them" in msg and "pad_sequence" in msg


def test_collate_fn_with_a_dataloader_or_arrays_is_refused():
    from torch.utils.data import DataLoader

    t = ft.Trainer(MeanPool(), progress=False)
    with pytest.raises(ft.ConfigError, match=r"collate_fn= applies to a Dataset, .*the train data is a DataLoader"):
        t.fit(DataLoader(Sequences(), batch_size=4), collate_fn=pad_batch)
    with pytest.raises(ft.ConfigError, match=r"the train data is a tuple"):
        t.fit((torch.zeros(4, 2), torch.zeros(4)), collate_fn=pad_batch)


def test_collate_fn_keeps_an_exact_mid_epoch_resume(tmp_path):
    def run(ckdir, epochs, resume=None, stop_at=None):
        class Stop(ft.Callback):
            def on_train_batch_end(self, trainer, loss):
                if stop_at is not None and trainer.state.global_step == stop_at:
                    trainer.state.should_stop = True

        torch.manual_seed(0)
        t = ft.Trainer(MeanPoolDrop(), lr=5e-2, progress=False, seed=2, metrics=[],
                       callbacks=[Stop()], checkpoint_dir=ckdir)
        t.fit(Sequences(), epochs=epochs, batch_size=16, collate_fn=pad_batch, resume=resume)
        return t

    ref = run(None, 3)
    run(tmp_path / "ck", 3, stop_at=9)  # 6 batches per epoch: stops in the middle of epoch 2
    resumed = run(tmp_path / "ck", 3, resume="last")
    assert resumed.history["train_loss"] == ref.history["train_loss"]
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), ref.model.parameters()))


class MeanPoolDrop(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = MeanPool()
        self.drop = nn.Dropout(0.2)

    def forward(self, x, lengths):
        return self.pool(self.drop(x), lengths)

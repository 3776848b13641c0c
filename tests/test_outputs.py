"""Any output structure: the output_key rule, models that compute their own loss, predict(structure=True)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import fittorch as ft
from fittorch.outputs import model_loss, select


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    y = X[:, :3].argmax(dim=1)  # linearly separable: three classes
    return X, y


@dataclass
class Out:
    logits: torch.Tensor
    hidden: torch.Tensor


def test_select_rule_for_each_structure():
    t = torch.ones(2, 3)
    assert select(t) is t
    assert select((t, 0)) is t and select([0, t], 1) is t
    assert select({"logits": t, "x": 1}) is t and select({"x": t}, "x") is t
    assert select(Out(t, None)) is t and select(Out(None, t), "hidden") is t


def test_select_refusals_name_what_the_output_has():
    with pytest.raises(ft.ModelError, match=r"a dict with keys \['a', 'b'\], which has no 'logits' entry.*output_key="):
        select({"a": 1, "b": 2})
    with pytest.raises(ft.ModelError, match=r"output_key='z', but the model's output has keys \['a'\]"):
        select({"a": 1}, "z")
    with pytest.raises(ft.ModelError, match=r"output_key=3, but the model returned a tuple of 2 items.*0 to 1"):
        select((1, 2), 3)


def test_model_loss_refusal_says_how_to_return_it():
    with pytest.raises(ft.ModelError, match=r"loss=None .* returned a dict with keys \['logits'\] without a 'loss'"):
        model_loss({"logits": torch.zeros(2)})


def test_output_key_must_be_a_str_or_int():
    with pytest.raises(ft.ConfigError, match=r"output_key=1.5; expected None .* \(str\) or a tuple index \(int\)"):
        ft.Trainer(nn.Linear(6, 3), output_key=1.5, progress=False)


class DictModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        h = self.body(x)
        return {"logits": self.head(h), "features": h}


def test_dict_output_trains_with_a_named_loss_and_predict_selects_or_returns_the_structure():
    X, y = _data()
    t = ft.Trainer(DictModel(), lr=1e-2, progress=False)
    h = t.fit((X, y), val=0.25, epochs=15)
    assert h[-1]["val_accuracy"] > 0.85
    assert t.predict(X[:5]).shape == (5, 3)
    full = t.predict(X[:5], structure=True)
    assert set(full) == {"logits", "features"} and full["features"].shape == (5, 16)
    assert torch.equal(full["logits"], t.predict(X[:5]))
    assert t.predict(X[:5], labels=True).shape == (5,)


def test_a_tuple_output_reaches_a_custom_loss_as_it_is_and_output_key_picks_the_metric_tensor():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.aux, self.main = nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            return self.aux(x), self.main(x)

    seen = []

    def two_term(out, y):
        seen.append(type(out).__name__)
        aux, main = out
        return nn.functional.cross_entropy(main, y) + 0.5 * nn.functional.cross_entropy(aux, y)

    X, y = _data()
    t = ft.Trainer(TwoHeads(), loss=two_term, task="multiclass", output_key=1, lr=3e-2, progress=False,
                   device="cpu")  # t.model(X) below runs on the CPU
    h = t.fit((X, y), val=0.25, epochs=20)
    assert set(seen) == {"tuple"}
    assert h[-1]["val_accuracy"] > 0.8
    assert torch.equal(t.predict(X[:4]), t.model(X[:4])[1].detach())


class HFStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Linear(6, 3)

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.f(input_ids * attention_mask)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def test_a_model_computing_its_own_loss_trains_with_loss_none_and_gets_the_labels():
    X, y = _data()
    data = ({"input_ids": X, "attention_mask": torch.ones_like(X)}, y)
    t = ft.Trainer(HFStyle(), loss=None, lr=3e-2, progress=False)
    h = t.fit(data, val=data, epochs=20)
    assert t.output_kind.task == "multiclass"  # integer labels one dimension below the logits
    assert h[-1]["val_accuracy"] > 0.85 and h[-1]["val_loss"] < h[0]["val_loss"]
    assert t.predict(data[0], labels=True).shape == (200,)


def test_loss_none_with_a_model_without_a_loss_is_refused_before_training():
    X, y = _data()
    t = ft.Trainer(DictModel(), loss=None, progress=False)
    with pytest.raises(ft.ModelError, match=r"loss=None means the model computes its own loss, but it returned a dict "
                                            r"with keys \['logits', 'features'\] without a 'loss'"):
        t.fit((X, y), epochs=1)


def test_a_wrong_keyword_is_reported_as_a_keyword_problem_not_a_feature_count():
    X, y = _data()
    t = ft.Trainer(HFStyle(), loss=None, progress=False)
    with pytest.raises(ft.ModelError) as err:
        t.fit(({"input_idz": X, "attention_mask": torch.ones_like(X)}, y), epochs=1)
    msg = str(err.value)
    assert "HFStyle.forward could not be called with keyword inputs ['input_idz', 'attention_mask']" in msg
    assert "['input_ids', 'attention_mask', 'labels']" in msg and "features" not in msg


def test_a_dataclass_output_uses_its_logits_field():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(6, 3)

        def forward(self, x):
            return Out(self.f(x), x)

    X, y = _data()
    t = ft.Trainer(M(), lr=1e-2, progress=False)
    t.fit((X, y), epochs=2)
    assert isinstance(t.predict(X[:3], structure=True), Out)
    assert t.predict(X[:3]).shape == (3, 3)

"""The config schema: defaults, one-line errors with the key and a suggestion, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from fittorch.config import Config, apply_override, dump_yaml, load_config, validate
from fittorch.errors import ConfigError

MINIMAL = {"data": {"source": "sklearn:iris"}}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


def test_minimal_config_gets_documented_defaults():
    cfg = validate(MINIMAL)
    assert cfg.seed == 0 and cfg.device == "auto" and cfg.loggers == ["csv"] and cfg.monitor == "val_loss"
    assert cfg.model.type == "mlp" and cfg.model.hidden == [64] and cfg.model.activation == "relu"
    assert cfg.optimizer.name == "adam" and cfg.optimizer.lr == 0.001 and cfg.optimizer.weight_decay == 0.0
    assert cfg.train.epochs == 100 and cfg.train.batch_size == 32 and cfg.train.shuffle is True
    assert cfg.train.precision == "fp32" and cfg.train.checkpoint_every_steps == 0
    assert cfg.data.val_split == 0.2 and cfg.data.test_split == 0.0 and cfg.data.standardize is True
    assert cfg.task is None and cfg.loss is None and cfg.scheduler is None
    assert cfg.callbacks.early_stopping is None


def test_name_defaults_to_file_stem(tmp_path):
    p = tmp_path / "my-run.yaml"
    p.write_text("data: {source: 'sklearn:iris'}\n")
    assert load_config(p).name == "my-run"


@pytest.mark.parametrize("raw, expected", [
    ({"data": {"source": "sklearn:iris"}, "trian": {}}, ["unknown key 'trian'", "Did you mean 'train'"]),
    ({"data": {"source": "sklearn:iris", "sorce": "x"}}, ["unknown key 'data.sorce'", "Did you mean 'source'"]),
    ({**MINIMAL, "callbacks": {"early_stopping": {"patiance": 3}}},
     ["'callbacks.early_stopping.patiance'", "Did you mean 'patience'"]),
    ({**MINIMAL, "train": {"epochs": "ten"}}, ["'train.epochs' must be an integer", "'ten'"]),
    ({**MINIMAL, "train": {"epochs": 2.5}}, ["'train.epochs' must be an integer", "2.5"]),
    ({**MINIMAL, "train": {"shuffle": "maybe"}}, ["'train.shuffle' must be true or false"]),
    ({**MINIMAL, "optimizer": {"lr": "fast"}}, ["'optimizer.lr' must be a number"]),
    ({**MINIMAL, "model": {"hidden": "wide"}}, ["'model.hidden' must be a list"]),
    ({**MINIMAL, "train": 5}, ["'train' must be a mapping"]),
    ({**MINIMAL, "train": {"epochs": 0}}, ["'train.epochs' is 0", "greater than or equal to 1"]),
    ({**MINIMAL, "task": "clasification"}, ["'task' is 'clasification'", "Did you mean 'multiclass'",
                                           "'classification' is the old name"]),
    ({**MINIMAL, "task": "multiclas"}, ["'task' is 'multiclas'", "'binary', 'multiclass', 'multilabel' or "
                                       "'regression'", "Did you mean 'multiclass'?"]),
    ({**MINIMAL, "task": "multilabel"}, ["task multilabel trains several 0/1 label columns",
                                        "data.target: [a, b, c]"]),
    ({"data": {"source": "a.csv", "target": ["a", "b"]}, "task": "multiclass"},
     ["data.target lists 2 columns, which is task multilabel", "Write task: multilabel"]),
    ({"data": {"source": "a.csv", "target": ["a"]}}, ["need at least 2 distinct names", "target: NAME"]),
    ({"data": {"source": "a.csv", "target": ["a", "a"]}}, ["need at least 2 distinct names"]),
    ({"data": {"source": "sklearn:iris", "target": ["a", "b"]}}, ["come from a .csv/.parquet file"]),
    ({"data": {"source": "a.csv", "target": ["a", "b"]}, "loss": "cross_entropy"},
     ["task 'multilabel' (data.target lists several 0/1 columns) does not go with loss 'cross_entropy'",
      "Use loss: bce_with_logits", "name one target column"]),
    ({**MINIMAL, "task": "binary", "loss": "cross_entropy"}, ["task 'binary' does not go with loss "
                                                              "'cross_entropy', a multiclass loss",
                                                              "loss: bce_with_logits", "task: multiclass"]),
    ({**MINIMAL, "task": "regression", "loss": "bce_with_logits"}, ["a binary loss", "loss: mse", "task: binary"]),
    ({**MINIMAL, "loss": "bce"}, ["loss bce takes sigmoid outputs", "mlp outputs raw scores",
                                  "Use loss: bce_with_logits"]),
    ({**MINIMAL, "loss": "nll"}, ["loss nll takes log_softmax outputs", "Use loss: cross_entropy"]),
    ({**MINIMAL, "loggers": ["csv", "tensorbord"]}, ["'loggers[1]'", "Did you mean 'tensorboard'"]),
    ({**MINIMAL, "train": {"precision": "fp8"}}, ["'train.precision' is 'fp8'", "fp32"]),
    ({"data": {"source": "sklearn:digts"}}, ["unknown scikit-learn dataset 'digts'", "Did you mean 'digits'"]),
    ({"data": {"source": "sklearn:iris", "val_split": 0.6, "test_split": 0.5}}, ["leaves no training rows"]),
    ({"data": {"source": "sklearn:iris", "params": {"n_samples": 5}}}, ["only for the sklearn:make_*"]),
    ({**MINIMAL, "model": {"type": "import"}}, ["model.target is required"]),
    ({**MINIMAL, "model": {"type": "import", "target": "nocolon"}}, ["package.module:ClassOrFactory"]),
    ({}, ["'data' is required"]),
])
def test_config_errors_are_one_line_with_key_and_hint(raw, expected):
    with pytest.raises(ConfigError) as info:
        validate(raw, source="run.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("run.yaml: ")
    for part in expected:
        assert part in message, message


def test_unknown_key_lists_valid_keys_of_that_section():
    with pytest.raises(ConfigError, match="Valid keys at optimizer: name, lr, weight_decay, kwargs"):
        validate({**MINIMAL, "optimizer": {"learning_rate": 0.1}})


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = write(tmp_path, "data:\n  source: sklearn:iris\n  target: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(p)


@pytest.mark.parametrize("text, match", [("", "is empty"), ("- a\n- b\n", "not a mapping")])
def test_empty_or_non_mapping_file(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/x.yaml")


def test_yaml_is_read_safely(tmp_path):
    """safe_load: a python tag is refused, never constructed."""
    p = write(tmp_path, "data: {source: !!python/object/apply:os.system ['touch pwned']}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    assert not (tmp_path / "pwned").exists()


def test_set_overrides_with_type_checking(tmp_path):
    p = write(tmp_path, "data: {source: 'sklearn:iris'}\ntrain: {epochs: 3}\n")
    cfg = load_config(p, ["train.epochs=7", "optimizer.lr=0.05", "model.hidden=[8, 4]", "callbacks.early_stopping.patience=2",
                          "optimizer.kwargs.amsgrad=true", "scheduler.name=cosine", "scheduler.T_max=5"])
    assert cfg.train.epochs == 7 and cfg.optimizer.lr == 0.05 and cfg.model.hidden == [8, 4]
    assert cfg.callbacks.early_stopping.patience == 2 and cfg.callbacks.early_stopping.monitor == "val_loss"
    assert cfg.optimizer.kwargs == {"amsgrad": True}
    assert cfg.scheduler.name == "cosine" and cfg.scheduler.model_dump()["T_max"] == 5
    with pytest.raises(ConfigError, match="'train.epochs' must be an integer"):
        load_config(p, ["train.epochs=many"])


@pytest.mark.parametrize("item, match", [
    ("train.epoch=3", "unknown key 'train.epoch'. Did you mean 'epochs'"),
    ("trian.epochs=3", "unknown key 'trian'. Did you mean 'train'"),
    ("epochs", "has no '='"),
    ("train..epochs=1", "not a key path"),
])
def test_bad_set(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_override(dict(MINIMAL), item)


def test_relative_paths_resolve_against_the_config_file_and_set_against_cwd(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    p = tmp_path / "cfg" / "run.yaml"
    p.write_text("data: {source: ../data/train.csv, target: y, val: val.csv}\n")
    cfg = load_config(p)
    assert cfg.data.source == str((tmp_path / "data" / "train.csv").resolve())
    assert cfg.data.val == str((tmp_path / "cfg" / "val.csv").resolve())
    monkeypatch.chdir(tmp_path)
    cfg = load_config(p, ["data.test=t.csv"])
    assert cfg.data.test == str((tmp_path / "t.csv").resolve())


def test_resolved_config_round_trips(tmp_path):
    cfg = validate({**MINIMAL, "name": "x", "scheduler": {"name": "step", "step_size": 3}})
    p = tmp_path / "config.yaml"
    p.write_text(dump_yaml(cfg))
    again = load_config(p)
    assert again.to_dict() == cfg.to_dict()
    assert isinstance(again, Config)


def test_yaml_aliases_are_refused_before_expansion(tmp_path):
    p = tmp_path / "alias.yaml"
    p.write_text("data: {source: 'sklearn:iris'}\nx: &x [1, 2]\nmetrics: *x\n")
    with pytest.raises(ConfigError, match=r"alias \(\*x\) is not allowed"):
        load_config(p)


def test_every_error_of_a_config_is_reported_at_once(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: ok\nseed: -1\ndata: {source: 'sklearn:iris'}\noptimizer: {lr: .nan, weight_decay: .inf}\n"
                 "train: {batch_size: 0, epochs: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: 5 problems:")
    for key in ("seed", "optimizer.lr", "optimizer.weight_decay", "train.batch_size", "train.epochs"):
        assert f"'{key}'" in msg, key


@pytest.mark.parametrize("override, match", [("seed=4294967296", "seed"), ("name=" + "n" * 101, "name"),
                                             ("model.hidden=[2000000]", "between 1 and")])
def test_numbers_and_names_are_bounded(tmp_path, override, match):
    p = tmp_path / "c.yaml"
    p.write_text("data: {source: 'sklearn:iris'}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(p, [override])


def test_the_column_role_keys_are_checked():
    from fittorch.config import validate as check

    with pytest.raises(ConfigError, match=r"data.numeric and data.categorical both list \['a'\]"):
        check({"data": {"source": "x.csv", "target": "y", "numeric": ["a"], "categorical": ["a"]}})
    with pytest.raises(ConfigError, match="'b', which is not in data.features"):
        check({"data": {"source": "x.csv", "target": "y", "features": ["a"], "categorical": ["b"]}})
    with pytest.raises(ConfigError, match="data.target 'y' is also listed as an input column"):
        check({"data": {"source": "x.csv", "target": "y", "categorical": ["y"]}})
    with pytest.raises(ConfigError, match="min_frequency"):
        check({"data": {"source": "x.csv", "min_frequency": 0}})
    with pytest.raises(ConfigError, match="embedding_dims"):
        check({"data": {"source": "x.csv"}, "model": {"embedding_dims": {"zip": -1}}})

"""Bad input to `fittorch tune`: one line, exit code 2, before any trial (and no study folder)."""

from __future__ import annotations

import pytest

from fittorch.cli import main
from fittorch.config import dump_yaml, load_config
from fittorch.tuning.space import ParamSpec

pytest.importorskip("optuna")

BASE = """\
name: bad
data: {source: sklearn:iris, val_split: 0.3}
model: {type: mlp, hidden: [8]}
train: {epochs: 2, batch_size: 16, log_every: 0}
search:
  space:
    optimizer.lr: {loguniform: [0.001, 0.1]}
  trials: 2
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE)
    return path


def refused(args, tmp_path, capsys, *expected):
    out = tmp_path / "runs"
    assert main(["tune", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    line = err.splitlines()[0]
    for text in expected:
        assert text in line, line
    assert not (out / "bad").exists(), "a refused study left a folder behind"
    return line


@pytest.mark.parametrize("override, expected", [
    ("search.space.optimizer.lrr={loguniform: [0.001, 0.1]}", ["unknown config key 'optimizer.lrr'",
                                                               "Did you mean 'optimizer.lr'?"]),
    ("search.space.modle.hidden={choice: [[8]]}", ["unknown config key 'modle'", "Did you mean 'model'?"]),
    ("search.space.optimizer.lr={uniform: [0.1, 0.01]}", ["range [0.1, 0.01] is empty"]),
    ("search.space.train.batch_size={int: [64, 8]}", ["range [64, 8] is empty"]),
    ("search.space.model.hidden={choice: []}", ["choice is an empty list"]),
    ("search.space.optimizer.lr={loguniform: [0, 0.1]}", ["needs low > 0"]),
    ("search.space.optimizer.lr={float: [-1, 0.1], log: true}", ["needs low > 0"]),
    ("search.space.optimizer.lr={loguniformm: [0.001, 0.1]}", ["unknown entry 'loguniformm'",
                                                               "Did you mean 'loguniform'?"]),
    ("search.space.train.batch_size={choice: [0, 16]}", ["the value 0 does not make a valid config"]),
    ("search.space.train.batch_size={loguniform: [8, 64]}", ["must be an integer"]),
    ("search.space.model.activation={choice: [relu, gelo]}", ["Did you mean 'gelu'?"]),
    ("search.metric=val_acc", ["'val_acc' is not a column this run logs", "Did you mean 'val_accuracy'?"]),
    ("search.trails=3", ["unknown key 'search.trails'", "Did you mean 'trials'?"]),
    ("search.pruner=hyperbnd", ["'search.pruner'", "Did you mean 'hyperband'?"]),
    ("search.sampler=grid", ["sampler grid needs choice lists or stepped ranges"]),
    ("search.trials=null", ["search needs trials or timeout"]),
])
def test_bad_search_sections_are_refused_before_any_trial(config, tmp_path, capsys, override, expected):
    refused([str(config), "--set", override], tmp_path, capsys, *expected)


def test_a_val_metric_without_validation_data(config, tmp_path, capsys):
    refused([str(config), "--set", "data.val_split=0"], tmp_path, capsys, "no validation data")


def test_a_config_without_a_search_section(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BASE.split("search:")[0])
    refused([str(path)], tmp_path, capsys, "has no 'search:' section")


@pytest.mark.parametrize("storage, expected", [
    ("{tmp}/no/such/folder/study.journal", "does not exist"),
    ("{tmp}", "is a folder"),
    ("postgresql://user:secret@127.0.0.1:1/optuna", "--storage postgresql://user:***@127.0.0.1:1/optuna"),
    ("{tmp}/garbage.journal", "cannot be opened as an Optuna journal"),
])
def test_a_storage_that_cannot_be_opened(config, tmp_path, capsys, storage, expected):
    (tmp_path / "garbage.journal").write_text("this is not a journal\n")
    line = refused([str(config), "--storage", storage.format(tmp=tmp_path)], tmp_path, capsys, expected)
    assert "secret" not in line


@pytest.mark.parametrize("args, expected", [(["--trials", "0"], "--trials 0"), (["--timeout", "-1"], "--timeout")])
def test_bad_budgets(config, tmp_path, capsys, args, expected):
    refused([str(config), *args], tmp_path, capsys, expected)


def test_another_config_in_the_same_study_folder_is_refused(config, tmp_path, capsys):
    out = tmp_path / "runs"
    (out / "bad").mkdir(parents=True)
    earlier = tmp_path / "earlier.yaml"
    earlier.write_text(BASE.replace("0.001", "0.0001"))
    (out / "bad" / "tune.yaml").write_text(dump_yaml(load_config(earlier)))
    assert main(["tune", str(config), "--out", str(out)]) == 2
    assert "holds a study of another config ('search.space.optimizer.lr.loguniform'" in capsys.readouterr().err


def test_fit_trains_a_tune_config_with_its_base_values(config, tmp_path):
    cfg = load_config(config)
    assert cfg.search.space["optimizer.lr"].kind == "loguniform"
    assert main(["fit", str(config), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    assert "search" not in (tmp_path / "runs" / "bad" / "config.yaml").read_text()


def test_param_spec_shapes():
    assert ParamSpec.model_validate({"int": [8, 64], "step": 8}).grid() == [8, 16, 24, 32, 40, 48, 56, 64]
    assert ParamSpec.model_validate({"float": [0.0, 0.5], "step": 0.25}).grid() == [0.0, 0.25, 0.5]
    assert ParamSpec.model_validate({"loguniform": [1e-4, 1e-1]}).grid() is None
    spec = ParamSpec.model_validate({"choice": [[64], [128, 64], None]})
    assert spec.labels() == ["[64]", "[128, 64]", None]
    assert spec.model_dump() == {"choice": [[64], [128, 64], None]}


def test_a_study_whose_trials_all_fail_exits_1_and_keeps_them_as_failed(config, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["tune", str(config), "--out", str(out), "--set", "optimizer.name=sgd",
                 "--set", "search.space.optimizer.lr={choice: [1.0e+30]}"])
    assert code == 1
    text = capsys.readouterr().out
    assert "3 trials in a row failed" in text and "0 complete, 0 pruned, 3 failed" in text
    assert "non-finite" in text and not (out / "bad" / "best.yaml").exists()

"""split.safetensors: the run's held-out rows on record (fittorch/splitrecord.py).

Every way a run can hold rows out (a CSV's test and val split, a regression with a scaled
target, multilabel columns, raw penguins with text and gaps, a sklearn: source, data.test as a
file of its own, data.features) reads back bit for bit what training used, through the saved
preprocessing. A changed source and a damaged record are refused with what to do.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fittorch import splitrecord
from fittorch.cli import main
from fittorch.cli._data import held_out
from fittorch.errors import CheckpointError
from fittorch.experiment import prepare_data
from fittorch.runs import load_run, read_run_json

ROOT = Path(__file__).resolve().parents[1]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def fit(tmp_path: Path, config: str, name: str = "r") -> Path:
    (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n{config}train: {{epochs: 2, batch_size: 32}}\n")
    code, _, err = cli("fit", tmp_path / f"{name}.yaml", "--out", tmp_path / "runs", "--quiet")
    assert code == 0, err
    return tmp_path / "runs" / name


def numeric_csv(path: Path, n: int = 300, seed: int = 0, regression: bool = False) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).round(5)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df["note"] = "x"
    df["y"] = (X[:, 0] * 3 + 10).round(4) if regression else np.array(["lo", "mid", "hi"])[
        (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    df.to_csv(path, index=False)


def multilabel_csv(path: Path, n: int = 240, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    for i, label in enumerate(["sports", "music", "art"]):
        df[label] = (X[:, i] > 0).astype(int)
    df.to_csv(path, index=False)


CASES = {
    "multiclass, test and val": ("data: {source: d.csv, target: y, ignore: [note], val_split: 0.2, test_split: 0.2}\n",
                                 numeric_csv),
    "regression, scaled target": ("data: {source: d.csv, target: y, ignore: [note], test_split: 0.25}\n",
                                  lambda p: numeric_csv(p, regression=True)),
    "multilabel": ("data: {source: d.csv, target: [sports, music, art], val_split: 0.2, test_split: 0.2}\n",
                   multilabel_csv),
    "penguins as they come": ("data: {source: d.csv, target: species, categorical: [year], val_split: 0.15, "
                              "test_split: 0.2}\n", lambda p: p.write_bytes(PENGUINS.read_bytes())),
    "data.features": ("data: {source: d.csv, target: y, features: [f0, f1, f3], test_split: 0.3}\n", numeric_csv),
    "not stratified": ("data: {source: d.csv, target: y, ignore: [note], stratify: false, test_split: 0.2}\n",
                       numeric_csv),
    "sklearn source": ("data: {source: 'sklearn:breast_cancer', val_split: 0.2, test_split: 0.2}\n", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_recorded_rows_are_the_rows_training_held_out(tmp_path, case):
    config, make = CASES[case]
    if make:
        make(tmp_path / "d.csv")
    run_dir = fit(tmp_path, config)
    cfg, prep, _ = load_run(run_dir)
    _, splits = prepare_data(cfg)  # what training used (the same seed gives the same split)
    record = splitrecord.read(run_dir)
    for part in ("train", "val", "test"):
        assert np.array_equal(record.rows(part), splits.rows[part]), part
        if getattr(splits, part) is None:
            continue
        _, X, y = held_out(cfg, prep, run_dir, part)
        want_X, want_y = getattr(splits, part)
        if isinstance(X, dict):  # numeric values + category codes
            assert X.keys() == want_X.keys() and all(np.array_equal(X[k], want_X[k]) for k in X), part
        else:
            assert X.dtype == want_X.dtype and np.array_equal(X, want_X), part
        assert y.dtype == want_y.dtype and np.array_equal(y, want_y), part
    # evaluate on the run's own split gives exactly the test figures fit wrote
    code, out, err = cli("evaluate", run_dir, "--json")
    assert code == 0, err
    got = json.loads(out)
    test = read_run_json(run_dir).get("test")
    if test:
        assert {k: got[k] for k in test} == test
    if record.source_sha256:
        assert (record.source_bytes, record.source_sha256) == splitrecord.fingerprint(tmp_path / "d.csv", "d")


def test_data_test_as_its_own_file_is_read_whole(tmp_path):
    numeric_csv(tmp_path / "d.csv")
    numeric_csv(tmp_path / "t.csv", n=50, seed=7)
    run_dir = fit(tmp_path, "data: {source: d.csv, target: y, ignore: [note], test: t.csv, val_split: 0.2}\n")
    assert not len(splitrecord.read(run_dir).rows("test"))  # no source row went to test
    code, out, err = cli("evaluate", run_dir, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["data"].startswith("data.test") and got["rows"] == 50
    assert {k: got[k] for k in read_run_json(run_dir)["test"]} == read_run_json(run_dir)["test"]


@pytest.fixture
def run(tmp_path):
    numeric_csv(tmp_path / "d.csv")
    return fit(tmp_path, "data: {source: d.csv, target: y, ignore: [note], val_split: 0.2, test_split: 0.2}\n")


def test_a_changed_source_is_refused_by_evaluate_resume_and_export_and_report_goes_on(run, tmp_path):
    source = tmp_path / "d.csv"
    original = source.read_bytes()
    lines = original.decode().splitlines(keepends=True)
    source.write_text("".join([lines[0], *lines[2:]]))  # one row fewer: a re-split would move rows
    for argv in (["evaluate", run], ["resume", run, "--epochs", "3"]):
        code, _, err = cli(*argv)
        assert code == 2 and "changed since this run was trained" in err, (argv, err)
        assert "sha256" in err and str(len(original)) in err, err
    assert "Put the original file back, or start a new run: fittorch fit" in cli("resume", run, "--epochs", "3")[2]
    code, out, err = cli("report", run)
    assert code == 0 and "without the validation split's confusion matrix" in err, err
    assert "confusion_matrix.png" not in out and "report.html" in out
    assert read_run_json(run)["epochs"] == 2  # the refused resume trained nothing
    code, out, err = cli("evaluate", run, source)  # a labelled file is still fine
    assert code == 0, err

    source.write_bytes(original)  # the same bytes again: everything works
    assert cli("evaluate", run)[0] == 0
    code, _, err = cli("resume", run, "--epochs", "3", "--quiet")
    assert code == 0, err
    assert read_run_json(run)["epochs"] == 3


def test_a_moved_or_swapped_source_is_an_error_naming_it(run, tmp_path):
    source = tmp_path / "d.csv"
    source.rename(tmp_path / "moved.csv")
    code, _, err = cli("evaluate", run)
    assert code == 2 and f"data.source {source} does not exist" in err, err
    code, out, err = cli("report", run)  # the curves and the report still draw
    assert code == 0 and "does not exist" in err and "report.html" in out, err
    os.mkfifo(source)  # a FIFO in its place is never opened (nothing hangs)
    code, _, err = cli("evaluate", run)
    assert code == 2 and "FIFO" in err, err


def test_a_source_that_is_a_symlink_is_followed(tmp_path):
    """The user's data file may be a link (unlike a run folder's files): fit records it, evaluate reads it."""
    (tmp_path / "store").mkdir()
    numeric_csv(tmp_path / "store" / "real.csv")
    (tmp_path / "d.csv").symlink_to(tmp_path / "store" / "real.csv")
    run_dir = fit(tmp_path, "data: {source: d.csv, target: y, ignore: [note], test_split: 0.2}\n")
    record = splitrecord.read(run_dir)
    assert (record.source_bytes, record.source_sha256) == splitrecord.fingerprint(tmp_path / "store" / "real.csv", "f")
    code, out, err = cli("evaluate", run_dir, "--json")
    assert code == 0 and json.loads(out)["rows"] == 60, err


def test_resume_refuses_a_split_that_differs_from_the_record(run):
    """The same file split otherwise (a changed seed or scikit-learn version) is refused too."""
    from safetensors.numpy import save

    record = splitrecord.read(run)
    codes = record.codes.copy()
    i, j = record.rows("train")[0], record.rows("val")[0]
    codes[i], codes[j] = codes[j], codes[i]
    meta = {"format": splitrecord.FORMAT, "rows": str(len(codes)), "source": record.source,
            "source_bytes": str(record.source_bytes), "source_sha256": record.source_sha256}
    (run / splitrecord.FILE).write_bytes(save({"part": codes}, metadata=meta))
    code, _, err = cli("resume", run, "--epochs", "3")
    assert code == 2 and "differs from the one this run was trained with" in err, err


def _meta(record, **change):
    meta = {"format": splitrecord.FORMAT, "rows": str(len(record.codes)), "source": record.source,
            "source_bytes": str(record.source_bytes), "source_sha256": record.source_sha256}
    meta.update(change)
    return {k: v for k, v in meta.items() if v is not None}


DAMAGE = {
    "truncated": (lambda data, rec: data[: len(data) // 2], "not a readable safetensors file"),
    "not safetensors": (lambda data, rec: b"PK\x03\x04 a zip", "not a readable safetensors file"),
    "huge header length": (lambda data, rec: (1 << 40).to_bytes(8, "little") + data[8:],
                           "not a readable safetensors file"),
    "other format": (lambda data, rec: _save(rec.codes, _meta(rec, format="other/9")), "format 'other/9'"),
    "rows disagree": (lambda data, rec: _save(rec.codes, _meta(rec, rows="7")), "its metadata says '7'"),
    "code 3": (lambda data, rec: _save(np.full_like(rec.codes, 3), _meta(rec)), "part code 3"),
    "int64 codes": (lambda data, rec: _save(rec.codes.astype(np.int64), _meta(rec)), "uint8"),
    "2-D codes": (lambda data, rec: _save(rec.codes.reshape(1, -1), _meta(rec)), "uint8"),
    "extra key": (lambda data, rec: _save(rec.codes, _meta(rec, cmd="rm -rf /")), "metadata keys"),
    "bad fingerprint": (lambda data, rec: _save(rec.codes, _meta(rec, source_sha256="abc")), "fingerprint"),
}


def _save(codes, meta) -> bytes:
    from safetensors.numpy import save

    return save({"part": codes}, metadata=meta)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_record_is_refused_naming_the_file(run, damage):
    make, words = DAMAGE[damage]
    path = run / splitrecord.FILE
    path.write_bytes(make(path.read_bytes(), splitrecord.read(run)))
    with pytest.raises(CheckpointError, match=words):
        splitrecord.read(run)
    code, _, err = cli("evaluate", run)  # a damaged run folder: exit 1, as for its other files
    assert code == 1 and str(path) in err and "Traceback" not in err, err


def test_a_record_that_is_a_fifo_or_a_link_out_of_the_folder_is_not_read(run, tmp_path):
    path = run / splitrecord.FILE
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    code, _, err = cli("evaluate", run)
    assert code == 1 and "symlink" in err, err
    path.unlink()
    os.mkfifo(path)  # a reader that opened it would wait forever
    code, _, err = cli("evaluate", run)
    assert code == 1 and "FIFO" in err, err


def test_a_run_without_a_record_splits_again_from_its_seed(run):
    """Folders of fittorch 0.2 have no split.safetensors: the same seed gives the same rows."""
    code, out, _ = cli("evaluate", run, "--json")
    (run / splitrecord.FILE).unlink()
    code2, out2, err = cli("evaluate", run, "--json")
    assert code == code2 == 0, err
    assert json.loads(out2) == json.loads(out)
    code, _, err = cli("resume", run, "--epochs", "3", "--quiet")  # resume does not write one afterwards
    assert code == 0 and not (run / splitrecord.FILE).exists(), err

"""The pandas-free reader of small CSV files gives exactly what the pandas path gives, or steps aside.

Every case reads one file both ways: ``read_table`` + ``TabularPreprocessor.transform`` (pandas)
and :func:`fittorch.tabular.smallcsv.read_inputs`, and compares the model inputs bit for bit and
the unknown-category report. Files the fast reader does not read exactly as pandas would must
give None (the CLI then takes the pandas path).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fittorch.cli.predict import write_columns
from fittorch.data.files import read_table
from fittorch.errors import DataError
from fittorch.tabular import TabularPreprocessor
from fittorch.tabular import smallcsv
from fittorch.tabular.smallcsv import read_inputs

PENGUINS_TRAIN = """\
species,island,bill_length_mm,flipper_length_mm,body_mass_g,sex,year
Adelie,Torgersen,39.1,181,3750,male,2007
Adelie,Torgersen,NA,NA,NA,NA,2007
Adelie,Biscoe,37.8,174,3400,female,2008
Gentoo,Biscoe,46.1,211,4500,female,2008
Gentoo,Biscoe,50,230,5700,male,2009
Chinstrap,Dream,46.5,192,3500,female,2007
Chinstrap,Dream,,195,3800,,2009
"""


def _tab(train_text: str, tmp_path, **kwargs) -> TabularPreprocessor:
    path = tmp_path / "train.csv"
    path.write_text(train_text, encoding="utf-8")
    return TabularPreprocessor(target="species", **kwargs).fit(read_table(path))


def _both(tab, path, **kwargs):
    """(fast inputs and report, or None; pandas inputs and report)."""
    fast = read_inputs(tab, path, allow=("species",), **kwargs)
    slow = tab.transform(read_table(path))
    return fast, (slow, dict(tab.last_unknown))


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()  # bit for bit


def _check(tab, path, **kwargs):
    fast, slow = _both(tab, path, **kwargs)
    assert fast is not None, path.read_bytes()[:300]
    assert _same(fast[0], slow[0]) and fast[1] == slow[1], (fast, slow)
    return fast


def _write(tmp_path, text: str | bytes, name="new.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_penguins_with_gaps_and_an_unseen_category(tmp_path):
    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    path = _write(tmp_path, "island,bill_length_mm,flipper_length_mm,body_mass_g,sex,year\n"
                            "Biscoe,47.5,218,5100.0,male,2009\n"
                            "Anvers,38.9,190,,,2010\n"          # unseen island and year, gaps
                            "Torgersen,NA,193,3650.0,female,2007\n"
                            "Dream,45.2,,5000.0,NULL,2008\n"    # pandas' missing words
                            "Dream,45.2,201,n/a,female,2007.0\n")
    (inputs, report) = _check(tab, path)
    assert set(report) == {"island", "year"} and report["island"]["examples"] == ["Anvers"]
    assert inputs["categorical"].shape == (5, 3)


def test_numbers_as_pandas_parses_them(tmp_path):
    tab = _tab("species,a,b,c\nx,1,2.5,3\ny,2,-1e3,4\nx,3,.5,5\n", tmp_path)
    path = _write(tmp_path, "a,b,c\n-0,5.,1\n+7,1E-3,-0\n0012,-.25,2\n,123456789.123456789,\n"
                            "9007199254740993,0.1e1,1e400\n")
    _check(tab, path)
    # a float column: "-0" is -0.0 there, as in pandas
    _check(tab, _write(tmp_path, "a,b,c\n-0,1,2\n1.5,2,3\n", "f.csv"))


def test_bom_crlf_and_quoted_fields(tmp_path):
    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    text = ('island,bill_length_mm,flipper_length_mm,body_mass_g,sex,year\r\n'
            '"Biscoe","47.5",218,5100,"male",2009\r\n'
            '"Dream, north",38.9,190,,,2010\r\n'
            '"Torgersen\nEast",40,193,3650,female,"2007"\r\n'
            'Dream,"NA",193,"",female,2008\r\n')  # quoted missing words are gaps in pandas too
    _check(tab, _write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    _check(tab, _write(tmp_path, text.replace("\r\n", "\r").replace("\nEast", " East"), "cr.csv"))  # old Mac ends


def test_semicolon_files_with_decimal_commas(tmp_path):
    train = "species;island;bill;year\nAdelie;Biscoe;39,1;2007\nGentoo;Dream;46,5;2008\nAdelie;Dream;41,0;2009\n"
    path = _write(tmp_path, train, "train.csv")
    tab = TabularPreprocessor(target="species", categorical=["year"]).fit(read_table(path))
    _check(tab, _write(tmp_path, "island;bill;year\nBiscoe;38,25;2007\nTorgersen;;2008\nDream;40;2011\n"))
    # a ';' file with decimal points: 38.25 is a number as well
    tab = TabularPreprocessor(target="species").fit(read_table(_write(tmp_path, train.replace(",", "."), "t2.csv")))
    _check(tab, _write(tmp_path, "island;bill;year\nBiscoe;38.25;2007\n", "n2.csv"))


def test_extra_columns_the_run_allows(tmp_path):
    tab = TabularPreprocessor(target="species", ignore=["note"]).fit(
        read_table(_write(tmp_path, "species,a,note\nx,1,hi\ny,2,yo\n", "train.csv")))
    _check(tab, _write(tmp_path, "note,a,species\nq,3,x\n"))  # ignored and target columns: not read
    path = _write(tmp_path, "a,zzz\n3,1\n", "extra.csv")
    assert read_inputs(tab, path) is None  # pandas refuses the unknown column, naming it
    assert read_inputs(tab, path, any_other=True) is not None  # a run with data.features


@pytest.mark.parametrize("body", [
    "Biscoe,47.5,218,5100, male,2009\n",          # a space pandas keeps
    "Biscoe,47.5,218,5100,male,True\n",           # a word pandas may read as a boolean
    "Biscoe,inf,218,5100,male,2009\n",
    "Biscoe,47.5,218,5100,Null,2009\n",            # not one of pandas' missing words, but close
    "Biscoe,47.5,218,5100,male\n",                 # ragged
    "Biscoe,47.5,218,5100,male,2009\n\n",          # a blank line
    'Biscoe,47.5,218,5100,"ma""le",2009\n',        # a quote inside
    "Biscoe,47.5,218,5100,male,2009.5e\n",         # not a number: the year column turns to text
    "1,47.5,218,5100,male,2009\n",                 # every island a number: pandas reads numbers
])
def test_what_the_fast_reader_leaves_to_pandas(tmp_path, body):
    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    path = _write(tmp_path, "island,bill_length_mm,flipper_length_mm,body_mass_g,sex,year\n" + body)
    assert read_inputs(tab, path) is None


@pytest.mark.parametrize("content", [b"island,bill_length_mm\n\xff\xfe,1\n", b"", b"island\n"])
def test_unreadable_or_empty_files_go_to_pandas(tmp_path, content):
    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    assert read_inputs(tab, _write(tmp_path, content)) is None


def test_large_files_and_text_where_numbers_were_go_to_pandas(tmp_path, monkeypatch):
    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    header = "island,bill_length_mm,flipper_length_mm,body_mass_g,sex,year\n"
    path = _write(tmp_path, header + "Biscoe,47.5,218,heavy,male,2009\n")
    assert read_inputs(tab, path) is None
    with pytest.raises(DataError, match="should hold numbers but holds text"):
        tab.transform(read_table(path))  # the pandas path words the error
    path = _write(tmp_path, header + "Biscoe,47.5,218,5100,male,2009\n" * 50, "big.csv")
    monkeypatch.setattr(smallcsv, "MAX_BYTES", 1000)
    assert read_inputs(tab, path) is None


def test_missing_words_are_pandas_own():
    from pandas._libs.parsers import STR_NA_VALUES

    assert smallcsv.NA_WORDS == STR_NA_VALUES


_number_cell = st.one_of(
    st.integers(-10**18, 10**18).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e6, 1e6).map(lambda v: f"{v:.6f}"),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.17e}"),
    st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.just(""), st.just("NA"))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(_number_cell, _number_cell), min_size=1, max_size=8))
def test_random_number_cells_read_as_pandas_reads_them(tmp_path, cells):
    tab = _tab("species,a,k\nx,1.5,2007\ny,2.5,2008\nx,-3,2009\n", tmp_path, categorical=["k"])
    path = _write(tmp_path, "a,k\n" + "".join(f"{a},{k}\n" for a, k in cells))
    fast, slow = _both(tab, path)
    if fast is not None:
        assert _same(fast[0], slow[0]) and fast[1] == slow[1], (fast, slow)


@pytest.mark.parametrize("columns", [
    {"prediction": ["Adelie", 'say "hi"', "a,b", "two\nlines", ""]},
    {"prediction": [1, 2, None, 3, 4], "proba_1": [0.1, 1e-5, float("nan"), 1e16, 1 / 3]},
    {"prediction": [True, False, None, True, True]},
    {"prediction": [1, 2.5, 3, None, -0.0]},                   # pandas: one float64 column
    {"prediction": [1.0, float("nan"), 2.0, 1e300, 5e-324]},   # a regression
])
def test_prediction_csv_is_byte_for_byte_what_pandas_writes(columns):
    ours = io.StringIO()
    write_columns(columns, ours)
    frame = pd.DataFrame({k: v for k, v in columns.items()})
    if None in columns["prediction"]:  # what predict did: labels first, then None in the broken rows
        bad = [v is None for v in columns["prediction"]]
        frame = pd.DataFrame({k: [0 if v is None else v for v in vs] if k == "prediction" else vs
                              for k, vs in columns.items()})
        frame["prediction"] = frame["prediction"].astype(object)
        frame.loc[bad, "prediction"] = None
    theirs = io.StringIO()
    frame.to_csv(theirs, index=False)
    assert ours.getvalue() == theirs.getvalue()


# -- through the CLI -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def penguin_run(tmp_path_factory):
    """A real `fittorch fit` run on the example penguins (text columns, gaps), 2 epochs."""
    import shutil
    from pathlib import Path

    from fittorch.cli import main

    root = tmp_path_factory.mktemp("pen")
    shutil.copy(Path(__file__).parents[1] / "examples" / "data" / "penguins.csv", root / "penguins.csv")
    (root / "cfg.yaml").write_text("name: pen\ndata: {source: penguins.csv, target: species, categorical: [year], "
                                   "test_split: 0.2}\nmodel: {type: mlp, hidden: [8]}\n"
                                   "train: {epochs: 2, batch_size: 32}\n")
    assert main(["fit", str(root / "cfg.yaml"), "--out", str(root / "runs"), "--quiet"]) == 0
    return root


@pytest.mark.parametrize("new", [
    "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
    "Biscoe,47.5,15.0,218,5100.0,male,2009\nAnvers,38.9,18.3,190,,,2010\nTorgersen,NA,NA,NA,NA,NA,2007\n",
    "species;island;bill_length_mm;bill_depth_mm;flipper_length_mm;body_mass_g;sex;year\n"
    "Gentoo;Biscoe;47,5;15,0;218;5100;male;2009\nAdelie;Dream;38,9;18,3;190;;;2010\n",
])
@pytest.mark.parametrize("command", ["predict", "predict --proba"])
def test_predict_gives_the_same_bytes_without_pandas(penguin_run, new, command, monkeypatch, capsys):
    from fittorch.cli import main

    path = penguin_run / "new.csv"
    path.write_bytes(b"\xef\xbb\xbf" + new.encode())
    argv = [*command.split(), str(next((penguin_run / "runs").iterdir())), str(path)]
    calls = []
    monkeypatch.setattr(smallcsv, "read_inputs", lambda *a, **k: calls.append(_fast(*a, **k)) or calls[-1])
    assert main(argv) == 0
    fast = capsys.readouterr()
    monkeypatch.setattr(smallcsv, "read_inputs", lambda *a, **k: None)  # the pandas path
    assert main(argv) == 0
    slow = capsys.readouterr()
    assert calls and calls[-1] is not None  # the file was read without pandas
    assert fast.out == slow.out and fast.err == slow.err
    assert "unknown level" in fast.err


_fast = smallcsv.read_inputs


def test_a_fifo_or_a_folder_is_never_read(tmp_path):
    import os

    tab = _tab(PENGUINS_TRAIN, tmp_path, categorical=["year"])
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # nobody writes to it: reading it would wait forever
    assert read_inputs(tab, fifo) is None
    (tmp_path / "dir.csv").mkdir()
    assert read_inputs(tab, tmp_path / "dir.csv") is None and read_inputs(tab, tmp_path / "nope.csv") is None

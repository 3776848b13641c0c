"""fittorch.tabular: column roles, gaps, unknown and rare levels, the JSON state, bad tables."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from fittorch.errors import CheckpointError, ConfigError, DataError, DataTypeError
from fittorch.tabular import TabularPreprocessor, TabularWarning
from fittorch.tabular.schema import FIRST_LEVEL, MISSING, UNKNOWN


def table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        "size": rng.normal(10, 2, n),
        "code": rng.choice([1, 2, 3], n),          # integer codes: categorical only when listed
        "member": rng.choice([True, False], n),
        "grade": pd.Categorical(rng.choice(["a", "b"], n)),
    })


def test_roles_are_detected_and_listed_ints_become_categories():
    tab = TabularPreprocessor(categorical=["code"]).fit(table())
    state = tab.state
    assert [c.name for c in state.numeric] == ["size"]
    assert [c.name for c in state.categorical] == ["city", "code", "member", "grade"]
    assert state.categorical[0].levels == ["Lima", "Oslo", "Pune"] and state.categorical[0].kind == "text"
    assert state.categorical[1].levels == ["1", "2", "3"] and state.categorical[2].kind == "bool"
    out = tab.transform(table())
    assert out["numeric"].dtype == np.float32 and out["categorical"].dtype == np.int64
    assert out["categorical"].shape == (40, 4) and tab.cardinalities == [5, 5, 4, 4]
    # without the list, the integer column is numeric
    assert [c.name for c in TabularPreprocessor().fit(table()).state.numeric] == ["size", "code"]


def test_numeric_gaps_are_filled_with_the_training_median_and_flagged():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 10.0], "z": [1.0, 2.0, 3.0, 4.0]})
    tab = TabularPreprocessor(missing_indicator=True, standardize=False).fit(df)
    out = tab.transform(pd.DataFrame({"x": [np.nan, 5.0], "z": [np.nan, 1.0]}))
    # x: median of 1, 2, 10 is 2, plus its indicator; z had no gaps in training: filled, no indicator
    np.testing.assert_allclose(out, [[2.0, 1.0, 2.5], [5.0, 0.0, 1.0]])
    assert tab.n_numeric_inputs == 3


def test_standardization_matches_sklearn_after_filling():
    from sklearn.preprocessing import StandardScaler

    df = table()
    out = TabularPreprocessor(ignore=["city", "code", "member", "grade"]).fit_transform(df)
    np.testing.assert_allclose(out, StandardScaler().fit_transform(df[["size"]]), rtol=1e-5, atol=1e-6)


def test_missing_is_a_level_unseen_is_unknown_and_counted():
    tab = TabularPreprocessor().fit(pd.DataFrame({"c": ["a", "b", None, "a"]}))
    out = tab.transform(pd.DataFrame({"c": ["b", None, "zzz", "zzz", "a"]}))
    assert out["categorical"][:, 0].tolist() == [FIRST_LEVEL + 1, MISSING, UNKNOWN, UNKNOWN, FIRST_LEVEL]
    assert tab.last_unknown == {"c": {"count": 2, "examples": ["zzz"]}}
    assert "c: 2 row(s), e.g. 'zzz'" in tab.unknown_message()
    tab.transform(pd.DataFrame({"c": ["a"]}))
    assert tab.last_unknown == {} and tab.unknown_message() is None


def test_rare_levels_fold_into_unknown():
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5 + ["rare"]})
    tab = TabularPreprocessor(min_frequency=2).fit(df)
    assert tab.state.categorical[0].levels == ["a", "b"] and tab.state.categorical[0].n_rare == 1
    assert tab.transform(pd.DataFrame({"c": ["rare"]}))["categorical"][0, 0] == UNKNOWN


def test_numbers_match_across_int_float_and_text_reads():
    tab = TabularPreprocessor(categorical=["year"]).fit(pd.DataFrame({"year": [2007, 2008]}))
    # the predict file has a gap, so pandas reads the column as float
    out = tab.transform(pd.DataFrame({"year": [2008.0, np.nan]}))
    assert out["categorical"][:, 0].tolist() == [FIRST_LEVEL + 1, MISSING]


def test_state_round_trips_through_json_and_is_validated(tmp_path):
    df = table()
    tab = TabularPreprocessor(categorical=["code"], missing_indicator=True).fit(df)
    path = tab.save(tmp_path / "prep.json")
    again = TabularPreprocessor.load(path)
    a, b = tab.transform(df), again.transform(df)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    data = json.loads(path.read_text())
    assert data["format"] == "fittorch.tabular/1" and data["columns"] == list(df.columns)
    data["numeric"][0]["scale"] = -1.0
    with pytest.raises(CheckpointError, match="numeric"):
        TabularPreprocessor.from_dict(data)
    data = json.loads(path.read_text())
    data["categorical"][0]["levels"] = ["x", "x"]
    with pytest.raises(CheckpointError, match="unique"):
        TabularPreprocessor.from_dict(data)
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        TabularPreprocessor.load(tmp_path / "bad.json")
    with pytest.raises(CheckpointError, match="expected a JSON object"):
        TabularPreprocessor.from_dict([1, 2])


def test_unselected_columns_are_never_inspected():
    df = table().assign(notes=[None] * 40, mixed=["x", 1] * 20)  # all-missing and mixed: never read
    tab = TabularPreprocessor(columns=["size", "city"]).fit(df)
    assert tab.state.columns == ["size", "city"]
    tab = TabularPreprocessor(ignore=["notes", "mixed"]).fit(df)
    assert "notes" not in tab.state.columns and tab.state.ignored == ["notes", "mixed"]
    tab.transform(df.drop(columns=["notes"]))  # an ignored column may be absent later


# -- bad input ---------------------------------------------------------------------------

def test_an_all_missing_column_is_refused_by_name():
    df = table().assign(empty=np.nan)
    with pytest.raises(DataError, match=r"'empty' is entirely missing \(40 of 40.*data.ignore: \[empty\]"):
        TabularPreprocessor().fit(df)
    with pytest.raises(DataError, match="'e2' is entirely missing"):
        TabularPreprocessor().fit(table().assign(e2=pd.Series([None] * 40, dtype=object)))


def test_a_column_whose_type_changed_is_refused():
    tab = TabularPreprocessor().fit(table())
    with pytest.raises(DataError, match=r"'size' should hold numbers but holds text, e\.g\. 'big' at row 2 "
                                        r".*numeric \(float64\) in the training table"):
        tab.transform(table().assign(size=["1.5", "big"] + ["2"] * 38))
    with pytest.raises(DataError, match="'city' holds number values .* held text values"):
        tab.transform(table().assign(city=np.arange(40)))
    # numbers written as text in one file are still numbers
    tab.transform(table().assign(size=table()["size"].astype(str)))


def test_duplicate_and_absent_columns_are_refused():
    tab = TabularPreprocessor().fit(table())
    dup = pd.concat([table(), table()[["size"]]], axis=1)
    with pytest.raises(DataError, match=r"duplicate column name\(s\) \['size'\]"):
        tab.transform(dup)
    with pytest.raises(DataError, match=r"missing column\(s\) 'city', which the model uses"):
        tab.transform(table().drop(columns=["city"]))
    with pytest.raises(DataError, match="has no column 'cty'. Did you mean 'city'"):
        TabularPreprocessor(categorical=["cty"]).fit(table())
    with pytest.raises(ConfigError, match="both numeric and categorical"):
        TabularPreprocessor(numeric=["a"], categorical=["a"])
    with pytest.raises(DataTypeError, match="takes a pandas DataFrame"):
        tab.transform(np.zeros((2, 5)))


def test_an_id_column_as_category_warns_with_its_level_count():
    df = table(200).assign(user_id=[f"u{i}" for i in range(200)])
    with pytest.warns(TabularWarning, match="'user_id' is used as categorical but has 200 distinct values in 200"):
        TabularPreprocessor().fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TabularPreprocessor(ignore=["user_id"]).fit(df)


def test_text_mixed_into_a_listed_numeric_column_names_the_rows():
    df = pd.DataFrame({"x": ["1", "2", "?", "4"], "c": ["a", "b", "a", "b"]})
    with pytest.raises(DataError, match=r"'x' should hold numbers but holds text, e\.g\. '\?' at row 3 "):
        TabularPreprocessor(numeric=["x"]).fit(df)


def test_the_model_trains_on_raw_rows_through_the_engine():
    import fittorch as ft

    df = table(120)
    y = np.where(df["city"] == "Oslo", "north", "south")
    tab = TabularPreprocessor().fit(df)
    model = tab.make_model(out_features=2, hidden=[16])
    trainer = ft.Trainer(model, lr=0.05, progress=False, seed=0)
    trainer.fit((tab.transform(df), y), epochs=30, batch_size=32)
    new = df.head(4).assign(city=["Oslo", "Lima", "Nowhere", None])
    preds = trainer.predict(tab.transform(new), labels=True)
    assert preds[:2].tolist() == ["north", "south"] and tab.last_unknown["city"]["count"] == 1


def test_an_ignored_name_that_is_not_a_column_is_a_typo():
    with pytest.raises(DataError, match="has no column 'ctiy'. Did you mean 'city'"):
        TabularPreprocessor(ignore=["ctiy"]).fit(table())


def test_trainer_fit_takes_true_or_a_preprocessor():
    import fittorch as ft

    df = table(60).drop(columns=["city", "code", "member", "grade"]).assign(size2=lambda d: d["size"] ** 2)
    df.loc[::5, "size"] = np.nan
    y = (df["size2"] > 100).astype(int).to_numpy()
    trainer = ft.Trainer(ft.MLP(2, [8], 2), progress=False)
    trainer.fit((df, y), epochs=2, preprocess=True)  # numbers with gaps: one float matrix, filled
    assert trainer.predict(df).shape == (60, 2)
    with pytest.raises(ConfigError, match="preprocess='yes'"):
        ft.Trainer(ft.MLP(2, [8], 2), progress=False).fit((df, y), epochs=1, preprocess="yes")

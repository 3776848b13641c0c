"""Reading DATA for ``evaluate`` and ``predict`` through a run's saved preprocessing."""

from __future__ import annotations

import numpy as np


def _sklearn_frame(cfg, prep, source: str):
    import pandas as pd

    from ..config import SKLEARN_DATASETS, SKLEARN_GENERATORS
    from ..errors import ConfigError
    from ..experiment import load_sklearn

    name = source.split(":", 1)[1]
    if name not in SKLEARN_DATASETS + SKLEARN_GENERATORS:
        raise ConfigError(f"Unknown source {source!r}. Use a data file or one of: "
                          f"{', '.join('sklearn:' + n for n in SKLEARN_DATASETS + SKLEARN_GENERATORS)}.")
    params = cfg.data.params if cfg.data.source == source else {}
    X, y, names, _ = load_sklearn(name, params, cfg.seed)
    return pd.DataFrame(X, columns=names), y


def labelled_data(cfg, prep, data: str | None, run_dir=None):
    """(description, X, y) ready for the model: the run's held-out rows when ``data`` is None."""
    from ..data.files import check_target_present, read_table
    from ..errors import DataError

    if data is None:
        which = next((p for p in ("test", "val") if getattr(cfg.data, p) or getattr(cfg.data, f"{p}_split")), None)
        if which is None:
            raise DataError("This run has no test or validation split; pass a labelled DATA file.")
        return held_out(cfg, prep, run_dir, which)
    if data.startswith("sklearn:"):
        df, y = _sklearn_frame(cfg, prep, data)
        return data, prep.frame_to_X(df, data), prep.encode(np.asarray(y), data)
    df = read_table(data)
    targets = prep.target_columns
    for target in targets:
        if target not in df.columns:
            raise DataError(f"{data} has no target column {target!r}, which evaluate needs to score the model. "
                            f"To predict unlabelled rows use: fittorch predict RUN_DIR {data}")
        check_target_present(df[target], target, data)
    y = df[targets[0]].to_numpy() if len(targets) == 1 else df[targets].to_numpy()
    return data, prep.frame_to_X(df.drop(columns=targets), data, allow=_ignored(cfg, df)), prep.encode(y, data)


def held_out(cfg, prep, run_dir, which: str):
    """(description, X, y) of the run's ``which`` part ("train", "val" or "test"): its own file
    (``data.val`` / ``data.test``), else the source rows ``split.safetensors`` records, put
    through the run's saved preprocessing. A run without the record is split again from its seed."""
    from .. import splitrecord
    from ..errors import DataError
    from ..experiment import prepare_data, read_frame

    own_file = getattr(cfg.data, which, None) if which != "train" else None
    if own_file:
        _, X, y = labelled_data(cfg, prep, own_file)
        return f"data.{which} {own_file}", X, y
    source = cfg.data.source
    what = f"{which} split of {source}"
    record = splitrecord.read(run_dir) if run_dir is not None else None
    if record is None:  # a run of fittorch 0.2 or before: the same seed gives the same split
        _, splits = prepare_data(cfg)
        pair = getattr(splits, which)
        if pair is None:
            raise DataError(f"This run has no {which} split; pass a labelled DATA file.")
        return what, pair[0], pair[1]
    rows = record.rows(which)
    if not len(rows):
        raise DataError(f"This run has no {which} split; pass a labelled DATA file.")
    splitrecord.check_source(record, source, doing=f"Reading its {which} split",
                             fix="Put the original file back, or pass a labelled DATA file.")
    if source.startswith("sklearn:"):
        df, y = _sklearn_frame(cfg, prep, source)
    else:
        df, y = read_frame(source, cfg.data, f"data.source {source}")
    if len(df) != len(record.codes):
        raise DataError(f"data.source {source} has {len(df)} rows; the run's {splitrecord.FILE} records "
                        f"{len(record.codes)}. Pass a labelled DATA file.")
    name = f"data.source {source}"
    X = prep.frame_to_X(df.iloc[rows], name, allow=_ignored(cfg, df))
    return what, X, prep.encode(np.asarray(y)[rows], name)


def feature_data(cfg, prep, data: str):
    from ..data.files import read_table

    if data.startswith("sklearn:"):
        df, _ = _sklearn_frame(cfg, prep, data)
        return prep.frame_to_X(df, data)
    fast = _small_csv_features(cfg, prep, data)
    if fast is not None:
        return fast
    df = read_table(data)
    return prep.frame_to_X(df, data, allow=(*prep.target_columns, *_ignored(cfg, df)))


def _small_csv_features(cfg, prep, data: str):
    """The model's inputs from a small CSV file without importing pandas (tabular runs), or None
    for the pandas path: the same values, see fittorch/tabular/smallcsv.py."""
    if prep.tabular is None or not data.lower().endswith(".csv"):
        return None
    from ..tabular.smallcsv import read_inputs

    result = read_inputs(prep.columns(), data, allow=(prep.target or "y",), any_other=cfg.data.features is not None)
    if result is None:
        return None
    X, prep.last_unknown = result
    return X


def _ignored(cfg, df) -> tuple:
    """With ``data.features`` the user picked columns, so the file's other columns are expected."""
    return tuple(str(c) for c in df.columns) if cfg.data.features is not None else ()


def note_unknown(prep) -> None:
    """Say on stderr which category values were read as the unknown level (never an error)."""
    import sys

    from ..tabular.columns import describe_unknown

    message = describe_unknown(prep.last_unknown)
    if message:
        print(f"note: {message}", file=sys.stderr)

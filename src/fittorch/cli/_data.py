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


def labelled_data(cfg, prep, data: str | None):
    """(description, X, y) ready for the model: the run's own split when ``data`` is None."""
    from ..data.files import check_target_present, read_table
    from ..errors import DataError

    if data is None:
        from ..experiment import prepare_data

        _, splits = prepare_data(cfg)  # same seed, same split as in training
        which = "test" if splits.test is not None else "val"
        pair = getattr(splits, which)
        if pair is None:
            raise DataError("This run has no test or validation split; pass a labelled DATA file.")
        own_file = getattr(cfg.data, which)  # data.test / data.val: a file of its own
        return (f"data.{which} {own_file}" if own_file else f"{which} split of {cfg.data.source}"), pair[0], pair[1]
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

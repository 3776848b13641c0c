"""A small CSV file straight into a fitted preprocessing's inputs, with the ``csv`` module.

``fittorch predict RUN new.csv`` on a few rows spent more time importing pandas than doing
anything else: ``import pandas`` (3.1, which also imports pyarrow) cost 0.22-0.43 s of CPU on
the 2-core benchmark machine, against about 0.5 s for the rest of the command beyond
``import torch`` (``python -X importtime -m fittorch predict ...``; docs/benchmarks.md, CLI
latency). So a small file is read here without pandas, with the run's saved column roles
telling how to read each used column.

The results are those of the pandas path (``read_table`` + ``TabularPreprocessor.transform``)
or nothing: :func:`read_inputs` returns None for anything it does not read exactly as
``pandas.read_csv`` would, and the caller then takes the pandas path, which also words every
error. It reads only files of at most :data:`MAX_BYTES` that decode as UTF-8, whose rows all
have the header's width, and whose used cells are plain: numbers written ``-12``, ``3.5``,
``1e-3`` (or ``3,5`` in a ``;`` file with decimal commas), text that pandas keeps as text, or
empty. pandas' missing-value words (``NA``, ``null``, ...) are gaps here too; words pandas may read
otherwise (``True``, ``inf``, ``Null``), cells with spaces at either end or a quote character,
and columns whose type differs from training go to pandas.
``tests/test_tabular_smallcsv.py`` compares both paths.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np

from .. import safeio
from ..data.files import SNIFF_BYTES, csv_dialect_of

MAX_BYTES = 1 << 20  # larger files go to pandas, whose import is then a small part of the work

_INT = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_FLOAT_COMMA = re.compile(r"[+-]?([0-9]+,?[0-9]*|,[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_TEXT = re.compile(r"[^0-9+\-.,eE_ ]")  # a character no number has: pandas keeps the column as text
# pandas' default missing-value words (pandas._libs.parsers.STR_NA_VALUES, checked by the tests)
NA_WORDS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                      "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
# other spellings of those, and words pandas may read as booleans or infinities: such a cell goes to pandas
_DOUBTFUL = {w.lower() for w in NA_WORDS} | {"true", "false", "inf", "+inf", "-inf", "infinity", "+infinity",
                                             "-infinity"}


def read_inputs(tab, path, *, allow: tuple = (), any_other: bool = False):
    """``(model inputs, unknown-category report)`` of the CSV file ``path`` through the fitted
    :class:`~fittorch.tabular.TabularPreprocessor` ``tab``, or None where pandas must read it.

    ``allow``: columns the file may hold besides the used and ignored ones (they are not read);
    ``any_other``: any other column may be there too (a run that picked its ``data.features``).
    """
    table = read_cells(path)
    if table is None:
        return None
    header, rows, decimal = table
    state = tab.state
    known = {*state.columns, *state.ignored, *map(str, allow)}
    if (not any_other and any(name not in known for name in header)) or \
            any(name not in header for name in state.columns):
        return None  # pandas words the error
    at = {name: i for i, name in enumerate(header)}
    numeric, keys = {}, {}
    for spec in state.numeric:
        numeric[spec.name] = _numbers([row[at[spec.name]] for row in rows], decimal)
    for spec in state.categorical:
        keys[spec.name] = _category_keys([row[at[spec.name]] for row in rows], spec.kind, decimal)
    if any(v is None for v in (*numeric.values(), *keys.values())):
        return None
    inputs = tab.encode_columns(numeric, keys, len(rows))
    return inputs, tab.last_unknown


def read_cells(path):
    """``(header, rows of text cells, decimal mark)`` of a small, regular, UTF-8 CSV file whose
    rows all have the header's width and whose cells hold no quote character; None for anything else."""
    if not str(path).lower().endswith(".csv"):
        return None
    try:  # a FIFO or device swapped in is never read (safeio.open_data_file): pandas then words the error
        with safeio.open_data_file(path) as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES:
                return None
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return None
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    dialect = csv_dialect_of(data[:SNIFF_BYTES].decode("utf-8-sig", errors="replace"))  # as read_table sniffs
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect["sep"], strict=True))
    except csv.Error:
        return None
    if len(rows) < 2:
        return None
    header, rows = rows[0], rows[1:]
    if len(set(header)) != len(header) or any(not name or name != name.strip() or '"' in name for name in header):
        return None
    if any(len(row) != len(header) for row in rows):
        return None  # blank lines, ragged rows: pandas' rules
    return header, rows, dialect["decimal"]


def _plain(cell: str) -> bool:
    """A present cell read the same way by pandas and here: no spaces at its ends, no quote, no
    word pandas might read as something else."""
    return cell == cell.strip() and '"' not in cell and cell.lower() not in _DOUBTFUL


def _floats(cells: list[str], decimal: str) -> list[float] | None:
    """The values of number cells as pandas reads a column of them (None if one is not a number)."""
    if all(_INT.fullmatch(c) for c in cells):
        return [float(int(c)) for c in cells]  # an int64 column: "-0" is 0.0
    if decimal == ",":
        if all(_FLOAT_COMMA.fullmatch(c) for c in cells):
            return [float(c.replace(",", ".")) for c in cells]
        return None
    return [float(c) for c in cells] if all(_FLOAT.fullmatch(c) for c in cells) else None


def _numbers(cells: list[str], decimal: str) -> np.ndarray | None:
    """A numeric column as float64 with NaN gaps (``columns.numeric_values``), or None."""
    present = [c for c in cells if c not in NA_WORDS]
    if not all(map(_plain, present)):
        return None
    values = _floats(present, decimal)
    if values is None:
        return None
    out = np.full(len(cells), np.nan)
    out[[i for i, c in enumerate(cells) if c not in NA_WORDS]] = values
    out[~np.isfinite(out)] = np.nan  # 1e999 overflows, as in numeric_values
    return out


def _category_keys(cells: list[str], kind: str, decimal: str):
    """(text keys, missing mask) as ``columns.level_keys`` gives them for this column, or None."""
    missing = np.array([c in NA_WORDS for c in cells], dtype=bool)
    present = [c for c in cells if c not in NA_WORDS]
    if not all(map(_plain, present)):
        return None
    keys = np.empty(len(cells), dtype=object)
    if kind == "text":
        if present and not any(_TEXT.search(c) for c in present):
            return None  # pandas might read every value as a number: the column's type differs
        keys[~missing] = present
    elif kind == "number":
        values = _floats(present, decimal)
        if values is None or any(abs(v) >= 2 ** 53 for v in values):
            return None
        keys[~missing] = [str(int(v)) if v.is_integer() else repr(v) for v in values]
    else:
        return None  # booleans: pandas' words
    return keys, missing

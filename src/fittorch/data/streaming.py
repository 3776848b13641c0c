"""Training from a Parquet or CSV file larger than memory.

``stream_file(path, target)`` returns a :class:`StreamData` source: it reads the file in
chunks with pyarrow (``ParquetFile.iter_batches`` / ``pyarrow.csv.open_csv``), shuffles
within a bounded buffer, and yields ready batches. Memory stays at about
``shuffle_buffer + chunk_rows`` rows, whatever the file's size. For Parquet the number of
rows comes from the file's metadata, so the loop knows the epoch's length up front.

Shuffling, seeded by ``(seed, epoch)``: the order of Parquet row groups is permuted, then
rows are mixed in a buffer of ``shuffle_buffer`` rows (half of it carries over to the next
fill, so rows travel beyond one window). With ``shuffle=False`` rows come in file order,
batched exactly as the in-memory path would batch them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

PARQUET = (".parquet", ".pq")
CSV = (".csv",)


def stream_file(path, target: str | None, *, features: list[str] | None = None, chunk_rows: int = 65_536,
                shuffle_buffer: int = 262_144, classes: list | None = None, check_finite: bool = True):
    """A streaming source over a Parquet or CSV file, for ``trainer.fit``.

    >>> trainer.fit(ft.data.stream_file("big.parquet", target="label"), epochs=1, batch_size=1024)

    Args:
        target: the label column (None for predict-only data).
        features: the input columns (default: every column but the target).
        chunk_rows: rows read per chunk.
        shuffle_buffer: rows held for shuffling; bounds the memory used.
        classes: the class labels, for text labels (else they are found with one pass
            over the target column only).
        check_finite: refuse NaN/inf in each chunk as it is read, naming the row and column.
    """
    return StreamData(path, target, features=features, chunk_rows=chunk_rows, shuffle_buffer=shuffle_buffer,
                      classes=classes, check_finite=check_finite)


class StreamData:
    """A data source that reads a table file chunk by chunk (see :func:`stream_file`)."""

    kind = "stream"
    iterable = True
    csv_block_bytes = 1 << 22  # CSV bytes parsed per chunk (pyarrow infers column types from the first)

    def __init__(self, path, target: str | None, *, features=None, chunk_rows: int = 65_536,
                 shuffle_buffer: int = 262_144, classes: list | None = None, check_finite: bool = True):
        from .. import validation

        self.path = validation.check_file(path, allowed=PARQUET + CSV)
        self.format = "parquet" if self.path.suffix.lower() in PARQUET else "csv"
        validation.check_positive_int(chunk_rows, "chunk_rows")
        validation.check_positive_int(shuffle_buffer, "shuffle_buffer")
        self.target = target
        self.chunk_rows, self.shuffle_buffer = int(chunk_rows), int(shuffle_buffer)
        self.check_finite = check_finite
        self.target_dtype: torch.dtype | None = None
        self.n_rows, self.n_row_groups, schema = self._inspect()
        columns = list(schema.names)
        if target is not None and target not in columns:
            raise validation.missing_column(target, columns, str(self.path), what="Target column")
        if features is None:
            features = [c for c in columns if c != target]
        for c in features:
            if c not in columns:
                raise validation.missing_column(c, columns, str(self.path), what="Feature column")
        for c in features:
            validation.check_arrow_type(c, schema.field(c).type, str(self.path))
        self.feature_names = list(features)
        self.classes = classes
        if target is not None and classes is None and _is_text(schema.field(target).type):
            self.classes = self._scan_classes()
        self._seed, self._epoch, self._shuffle = 0, 0, False

    # -- the source interface the loop uses ----------------------------------------------
    def __len__(self) -> int:
        if self.n_rows is None:
            raise TypeError(f"the number of rows of the CSV file {self.path} is not known before reading it")
        return self.n_rows

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int | None:
        if self.n_rows is None:
            return None
        return self.n_rows // batch_size if drop_last else math.ceil(self.n_rows / batch_size)

    def epoch_order(self, seed: int, epoch: int, shuffle: bool, *, rank: int = 0, world_size: int = 1):
        self._seed, self._epoch, self._shuffle = int(seed), int(epoch), bool(shuffle)
        self._rank, self._world = rank, world_size
        return None

    def batches(self, batch_size: int, order=None, *, start: int = 0, drop_last: bool = False, device=None,
                raw: bool = False):
        """Yield ``(X, y)`` batches; chunks are read lazily, so memory stays bounded."""
        rng = np.random.default_rng([self._seed, self._epoch]) if self._shuffle else None
        dtype = None if raw else self.target_dtype
        index = 0
        for X, y in self._batches_np(batch_size, rng, drop_last):
            if index >= start and (getattr(self, "_world", 1) == 1 or index % self._world == self._rank):
                inputs = torch.from_numpy(X)
                target = None if y is None else torch.from_numpy(y)
                if device is not None:
                    inputs = inputs.to(device, non_blocking=True)
                    target = None if target is None else target.to(device, non_blocking=True)
                if dtype is not None and target is not None and target.dtype != dtype:
                    target = target.to(dtype)
                yield (inputs,), target
            index += 1

    def head(self, n: int = 2):
        """The first ``n`` rows as one raw batch (for the dry forward before training)."""
        for X, y in self._chunks(None, rows=n):
            return (torch.from_numpy(X[:n]),), None if y is None else torch.from_numpy(y[:n])
        return None

    # -- reading ----------------------------------------------------------------------
    def _inspect(self):
        from .. import validation

        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.path)
                return meta.metadata.num_rows, meta.num_row_groups, meta.schema_arrow
            reader = self._csv_reader()
            return None, 1, reader.schema
        except (OSError, ValueError) as exc:
            raise validation.unreadable_file(self.path, exc) from None

    def _csv_reader(self, columns: list[str] | None = None):
        import pyarrow.csv as pcsv

        read = pcsv.ReadOptions(block_size=self.csv_block_bytes)
        convert = pcsv.ConvertOptions(include_columns=columns) if columns else None
        return pcsv.open_csv(self.path, read_options=read, convert_options=convert)

    def _record_batches(self, rng, rows: int | None = None, columns: list[str] | None = None):
        """``(row offset in the file, pyarrow RecordBatch)`` pairs, row groups in a seeded order."""
        if columns is None:
            columns = self.feature_names + ([self.target] if self.target is not None else [])
        if self.format == "parquet":
            import pyarrow.parquet as pq

            # Buffered reads, no pre-buffering, one decode thread: arrow holds a few MB, not row groups.
            pf = pq.ParquetFile(self.path, buffer_size=1 << 20, pre_buffer=False)
            sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else []
            groups = rng.permutation(len(sizes)) if rng is not None else range(len(sizes))
            for g in groups:
                offset = int(starts[g])
                for rb in pf.iter_batches(batch_size=rows or self.chunk_rows, row_groups=[int(g)], columns=columns,
                                          use_threads=False):
                    yield offset, rb
                    offset += rb.num_rows
        else:
            offset = 0
            for rb in self._csv_reader(columns=columns):
                yield offset, rb
                offset += rb.num_rows

    def _chunks(self, rng, rows: int | None = None):
        """``(X float32 [n, F], y or None)`` per chunk read from the file."""
        from .. import validation

        offset = 0
        try:
            for offset, rb in self._record_batches(rng, rows):
                n = rb.num_rows
                X = np.empty((n, len(self.feature_names)), dtype=np.float32)
                for j, name in enumerate(self.feature_names):
                    X[:, j] = rb.column(name).to_numpy(zero_copy_only=False)
                y = None
                if self.target is not None:
                    y = rb.column(self.target).to_numpy(zero_copy_only=False)
                    if not y.flags.writeable:
                        y = y.copy()
                    if self.classes is not None:
                        from .labels import encode, is_identity

                        if not is_identity(self.classes):
                            y = encode(y, self.classes, f"streamed rows {offset}..{offset + n - 1}")
                    elif y.dtype == np.float64:
                        y = y.astype(np.float32)
                if self.check_finite:
                    validation.check_chunk_finite(X, y, self.feature_names, offset, str(self.path))
                yield X, y
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            from ..errors import FittorchError

            if isinstance(exc, FittorchError):
                raise
            raise validation.unreadable_file(self.path, exc, at_row=offset) from None

    def _batches_np(self, batch_size: int, rng, drop_last: bool):
        """Re-cut chunks into batches, shuffling within a bounded buffer when ``rng`` is set.

        The buffer is allocated once (about ``shuffle_buffer + 2 * chunk_rows`` rows) and
        reused, so memory stays flat over an epoch of any length.
        """
        limit = max(self.shuffle_buffer, batch_size) if rng is not None else batch_size
        Xb = yb = None
        count = 0
        for X, y in self._chunks(rng):
            n = len(X)
            if Xb is None or count + n > len(Xb):
                Xb, yb = _grow(Xb, yb, count, count + n + limit, X, y)
            Xb[count : count + n] = X
            if yb is not None:
                yb[count : count + n] = y
            count += n
            if count < limit:
                continue
            if rng is not None:
                keep = min(count - batch_size, self.shuffle_buffer // 2)  # carried into the next fill
                emit = ((count - keep) // batch_size) * batch_size
                perm = rng.permutation(count)
                for i in range(0, emit, batch_size):
                    idx = perm[i : i + batch_size]
                    yield Xb[idx], None if yb is None else yb[idx]
                rest = perm[emit:]
            else:
                emit = (count // batch_size) * batch_size
                for i in range(0, emit, batch_size):
                    yield Xb[i : i + batch_size].copy(), None if yb is None else yb[i : i + batch_size].copy()
                rest = slice(emit, count)
            left = count - emit
            Xb[:left] = Xb[rest]
            if yb is not None:
                yb[:left] = yb[rest]
            count = left
        if count:
            order = rng.permutation(count) if rng is not None else np.arange(count)
            stop = (count // batch_size) * batch_size if drop_last else count
            for i in range(0, stop, batch_size):
                idx = order[i : i + batch_size]
                yield Xb[idx], None if yb is None else yb[idx]

    def _scan_classes(self) -> list:
        """The distinct labels of the target column, read one column at a time (bounded memory)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        seen = None
        for _, rb in self._record_batches(None, columns=[self.target]):
            u = pc.unique(rb.column(self.target))
            seen = u if seen is None else pc.unique(pa.concat_arrays([seen, u]))
        values = [] if seen is None else seen.to_pylist()
        return sorted(values)


def _grow(Xb, yb, count: int, rows: int, X: np.ndarray, y):
    """A (larger) buffer holding the first ``count`` rows of the old one."""
    new_X = np.empty((rows,) + X.shape[1:], dtype=X.dtype)
    new_y = None if y is None else np.empty((rows,) + y.shape[1:], dtype=y.dtype)
    if Xb is not None and count:
        new_X[:count] = Xb[:count]
        if new_y is not None:
            new_y[:count] = yb[:count]
    return new_X, new_y


def _is_text(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_dictionary(arrow_type)

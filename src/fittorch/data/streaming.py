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
        from . import checks as validation

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
        self.num_classes: int | None = None  # set by validation once the model's output size is known
        self.rows_read = 0  # rows yielded by the last pass (the row count of a CSV, once read)

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
        self.rows_read = 0
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
            self.rows_read += len(X)
            index += 1

    def head(self, n: int = 2):
        """The first ``n`` rows as one raw batch (for the dry forward before training)."""
        for X, y in self._chunks(None, rows=n):
            return (torch.from_numpy(X[:n]),), None if y is None else torch.from_numpy(y[:n])
        return None

    # -- reading ----------------------------------------------------------------------
    def _inspect(self):
        from . import checks as validation

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

    def _read(self, rng, rows: int | None = None):
        """``(offset, RecordBatch)`` pairs; a file that fails to parse mid-way is reported by row."""
        from . import checks as validation
        from ..errors import FittorchError

        offset = 0
        try:
            for offset, rb in self._record_batches(rng, rows):
                yield offset, rb
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            if isinstance(exc, FittorchError):
                raise
            raise validation.unreadable_file(self.path, exc, at_row=offset) from None

    def _convert(self, rb, offset: int, X_out: np.ndarray):
        """Write the feature columns of ``rb`` into ``X_out`` (float32 rows); return the targets."""
        from . import checks as validation

        n = rb.num_rows
        for j, name in enumerate(self.feature_names):
            X_out[:, j] = rb.column(name).to_numpy(zero_copy_only=False)
        y = None
        if self.target is not None:
            y = rb.column(self.target).to_numpy(zero_copy_only=False)
            if self.classes is not None:
                from .labels import encode, is_identity

                if not is_identity(self.classes):
                    y = encode(y, self.classes, f"streamed rows {offset}..{offset + n - 1}")
            elif y.dtype == np.float64:
                y = y.astype(np.float32)
        if self.num_classes and y is not None and y.dtype.kind in "iu" and len(y):
            validation.check_chunk_labels(y, self.num_classes, offset, str(self.path))
        if self.check_finite and not np.isfinite(np.add.reduce(X_out, axis=None)):  # cheap: no n x F mask
            validation.check_chunk_finite(X_out, y, self.feature_names, offset, str(self.path))
        if self.check_finite and y is not None and y.dtype.kind == "f" and not np.isfinite(np.add.reduce(y)):
            validation.check_chunk_finite(X_out[:0], y, self.feature_names, offset, str(self.path))
        return y

    def _chunks(self, rng, rows: int | None = None):
        """``(X float32 [n, F], y or None)`` per chunk read from the file."""
        for offset, rb in self._read(rng, rows):
            X = np.empty((rb.num_rows, len(self.feature_names)), dtype=np.float32)
            y = self._convert(rb, offset, X)
            yield X, (y.copy() if y is not None and not y.flags.writeable else y)

    def _batches_np(self, batch_size: int, rng, drop_last: bool):
        """Re-cut chunks into batches, shuffling within a bounded buffer when ``rng`` is set.

        Chunks are decoded straight into one preallocated buffer (about ``shuffle_buffer +
        chunk_rows`` rows, plus a second one to compact into), and the shuffle permutes a
        preallocated index in place: per batch only the batch itself is allocated, so
        memory stays flat over an epoch of any length.
        """
        limit = max(self.shuffle_buffer, batch_size) if rng is not None else batch_size
        buf = _Ring(len(self.feature_names), limit + max(self.chunk_rows, batch_size))
        for offset, rb in self._read(rng):
            n = rb.num_rows
            buf.reserve(n)
            y = self._convert(rb, offset, buf.X[buf.count : buf.count + n])
            buf.put_y(y, n)
            buf.count += n
            if buf.count < limit:
                continue
            if rng is not None:
                keep = min(buf.count - batch_size, self.shuffle_buffer // 2)  # carried into the next fill
                emit = ((buf.count - keep) // batch_size) * batch_size
                perm = buf.permutation(rng)
                for i in range(0, emit, batch_size):
                    yield buf.gather(perm[i : i + batch_size])
                buf.compact(perm[emit:])
            else:
                emit = (buf.count // batch_size) * batch_size
                for i in range(0, emit, batch_size):
                    yield buf.gather(slice(i, i + batch_size))
                buf.compact(slice(emit, buf.count))
        if buf.count:
            order = buf.permutation(rng) if rng is not None else np.arange(buf.count)
            stop = (buf.count // batch_size) * batch_size if drop_last else buf.count
            for i in range(0, stop, batch_size):
                yield buf.gather(order[i : i + batch_size])

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


class _Ring:
    """The streaming shuffle buffer: rows ``[0, count)`` of ``X``/``y`` are pending."""

    def __init__(self, n_features: int, capacity: int):
        self.n_features, self.count = n_features, 0
        self._alloc(capacity)
        self.y = self.y2 = None

    def _alloc(self, capacity: int):
        self.capacity = capacity
        self.X = np.empty((capacity, self.n_features), dtype=np.float32)
        self.X2 = np.empty_like(self.X)
        self.index = np.arange(capacity)
        self.perm = np.empty(capacity, dtype=np.int64)

    def reserve(self, n: int) -> None:
        if self.count + n <= self.capacity:
            return
        X, y, count = self.X, self.y, self.count
        self._alloc(2 * (count + n))
        self.X[:count] = X[:count]
        if y is not None:
            self.y = np.empty((self.capacity,) + y.shape[1:], dtype=y.dtype)
            self.y2 = np.empty_like(self.y)
            self.y[:count] = y[:count]

    def put_y(self, y, n: int) -> None:
        if y is None:
            return
        if self.y is None or self.y.dtype != y.dtype:
            self.y = np.empty((self.capacity,) + y.shape[1:], dtype=y.dtype)
            self.y2 = np.empty_like(self.y)
        self.y[self.count : self.count + n] = y

    def permutation(self, rng) -> np.ndarray:
        perm = self.perm[: self.count]
        perm[:] = self.index[: self.count]
        rng.shuffle(perm)
        return perm

    def gather(self, idx):
        if isinstance(idx, slice):
            return self.X[idx].copy(), None if self.y is None else self.y[idx].copy()
        return self.X[idx], None if self.y is None else self.y[idx]

    def compact(self, rest) -> None:
        """Keep only the rows ``rest`` (moved to the front)."""
        left = len(self.index[rest]) if isinstance(rest, slice) else len(rest)
        if isinstance(rest, slice):
            self.X2[:left] = self.X[rest]
            if self.y is not None:
                self.y2[:left] = self.y[rest]
        else:
            np.take(self.X, rest, axis=0, out=self.X2[:left])
            if self.y is not None:
                np.take(self.y, rest, axis=0, out=self.y2[:left])
        self.X, self.X2 = self.X2, self.X
        self.y, self.y2 = self.y2, self.y
        self.count = left


def _is_text(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_dictionary(arrow_type)

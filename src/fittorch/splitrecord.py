"""The run's split on record: which rows of ``data.source`` trained, validated and tested it.

``fittorch fit`` writes ``RUN_DIR/split.safetensors``: one ``uint8`` per row of the source
(0 train, 1 validation, 2 test) and, for a file source, the file's size and SHA-256.

* ``evaluate``, ``report`` and ``export`` take their held-out rows from it and apply the run's
  saved preprocessing. They do not split again, which would import scikit-learn and fit the
  preprocessing a second time.
* A source file that changed since training is refused, naming both fingerprints. Splitting
  the new file again would move training rows into the "test" rows without a word.
* ``resume`` checks the same fingerprint and that its split is the recorded one, so a run
  never continues on other rows than it started on.

A run folder without the file (fittorch 0.2 and before) is split again from its seed, as then.
The file is untrusted input like the rest of the folder: read with a bound, its header, tensor
and metadata checked before anything is used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import safeio
from .errors import CheckpointError, DataError

FILE = "split.safetensors"
FORMAT = "fittorch-split/1"
PARTS = {"train": 0, "val": 1, "test": 2}
MAX_BYTES = 1 << 32  # one byte a row: a source of 4 billion rows
_META_KEYS = {"format", "rows", "source", "source_bytes", "source_sha256"}


@dataclass
class SplitRecord:
    codes: np.ndarray  # uint8 [rows]: 0 train, 1 val, 2 test
    source: str
    source_bytes: int | None  # None for a sklearn: source (no file)
    source_sha256: str | None

    def rows(self, part: str) -> np.ndarray:
        """Sorted row positions of ``part`` ("train", "val" or "test") in the source."""
        return np.flatnonzero(self.codes == PARTS[part])


def fingerprint(path: str | os.PathLike, what: str) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of the user's data file, read in 8 MiB chunks (no FIFO waits)."""
    try:
        f = safeio.open_data_file(path, what=what)
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist (moved or deleted since the run was trained).") from None
    except safeio.UnsafeFile as exc:  # a FIFO, a folder, a device: never opened
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"Cannot read {what} {path}: {exc.strerror or exc}.") from None
    with f:
        digest, size = hashlib.sha256(), 0
        while chunk := f.read(8 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def write(run_dir: str | os.PathLike, source: str, rows: dict) -> Path:
    """Record ``rows`` (``{"train"|"val"|"test": row positions}``, as ``prepare_data`` made them)."""
    from safetensors.numpy import save

    n = sum(len(r) for r in rows.values())
    codes = np.zeros(n, dtype=np.uint8)
    for part, idx in rows.items():
        codes[np.asarray(idx, dtype=np.int64)] = PARTS[part]
    meta = {"format": FORMAT, "rows": str(n), "source": source}
    if not source.startswith("sklearn:"):
        size, sha = fingerprint(source, "data.source")
        meta.update(source_bytes=str(size), source_sha256=sha)
    return safeio.atomic_write(Path(run_dir) / FILE, save({"part": codes}, metadata=meta))


def read(run_dir: str | os.PathLike) -> SplitRecord | None:
    """The record of ``run_dir``, or None when the run has none (written before fittorch 0.3)."""
    path = Path(run_dir) / FILE
    try:
        data = safeio.read_regular(path, max_bytes=MAX_BYTES, root=run_dir, what="split record")
    except FileNotFoundError:
        return None
    except safeio.UnsafeFile as exc:
        raise CheckpointError(str(exc)) from None
    meta, codes = _parse(data, path)
    bad = _check(meta, codes)
    if bad:
        raise CheckpointError(f"{path} is damaged ({bad}). Delete it to split the run's data again from its "
                              "seed, or pass a labelled DATA file.")
    sha = meta.get("source_sha256")
    return SplitRecord(codes, meta["source"], int(meta["source_bytes"]) if sha else None, sha)


def _parse(data: bytes, path: Path) -> tuple[dict, np.ndarray | None]:
    from safetensors.numpy import load

    from . import strictjson

    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        if not 2 <= n <= min(len(data) - 8, 1 << 20):
            raise ValueError(f"header length {n}")
        header = strictjson.loads(data[8:8 + n].decode("utf-8"))
        tensors = load(data)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes the parsers raise
        raise CheckpointError(f"{path} is not a readable safetensors file ({type(exc).__name__}: {exc}). "
                              "Delete it to split the run's data again from its seed.") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return (meta if isinstance(meta, dict) else {}), (tensors.get("part") if len(tensors) == 1 else None)


def _check(meta: dict, codes) -> str:
    """What is wrong with a parsed record ("" when nothing)."""
    if meta.get("format") != FORMAT:
        return f"format {meta.get('format')!r}, expected {FORMAT!r}"
    if not set(meta) <= _META_KEYS or not {"rows", "source"} <= set(meta):
        return f"metadata keys {sorted(meta)}"
    if codes is None or codes.dtype != np.uint8 or codes.ndim != 1:
        return "no one-dimensional uint8 tensor 'part'"
    if not meta["rows"].isdigit() or int(meta["rows"]) != len(codes):
        return f"{len(codes)} rows, its metadata says {meta['rows']!r}"
    if len(codes) and int(codes.max()) > 2:
        return f"part code {int(codes.max())}; codes are 0 train, 1 val, 2 test"
    sha, size = meta.get("source_sha256"), meta.get("source_bytes")
    if (sha is None) != (size is None) or (sha is not None and not (len(sha) == 64 and size.isdigit())):
        return "a malformed source fingerprint"
    return ""


def check_source(record: SplitRecord, source: str, *, doing: str, fix: str) -> None:
    """Refuse when ``source`` is not the file the record was made from (same size and SHA-256)."""
    if record.source_sha256 is None:
        return
    size, sha = fingerprint(source, "data.source")
    if (size, sha) != (record.source_bytes, record.source_sha256):
        raise DataError(f"data.source {source} changed since this run was trained: it had {record.source_bytes} "
                        f"bytes (sha256 {record.source_sha256[:12]}...), it has {size} bytes (sha256 {sha[:12]}...) "
                        f"now. {doing} would use other rows than the run's. {fix}")


def check_same_split(record: SplitRecord, rows: dict, source: str) -> None:
    """Refuse when a fresh split of ``source`` (``rows``) differs from the recorded one."""
    n = sum(len(r) for r in rows.values())
    same = n == len(record.codes) and all(np.array_equal(record.rows(p), np.sort(np.asarray(r)))
                                          for p, r in rows.items())
    if not same:
        raise DataError(f"The split of data.source {source} differs from the one this run was trained with "
                        f"(recorded in {FILE}). The config's seed, val_split, test_split or stratify setting, or the "
                        "scikit-learn version, changed since. Restore them, or start a new run.")


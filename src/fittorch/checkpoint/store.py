"""Checkpoint directories on disk: atomic writes, a SHA-256 manifest, listing, verifying, retention.

Layout of a checkpoint directory (all names fixed; nothing else is ever read)::

    CHECKPOINT_DIR/
        ckpt-e000003-b0000000/      # after 3 epochs, 0 batches into the 4th
            model.safetensors       # weights (loadable with fittorch.load(dir, model=...))
            model.json              # model description, as written by fittorch.save
            state.safetensors       # every other tensor: optimizer, RNG, epoch losses, ...
            state.json              # everything else, as JSON
            manifest.json           # SHA-256 and size of each file above; written last
        ckpt-e000003-b0000017/      # mid-epoch: 17 batches into the 4th epoch
        .tmp-.../                   # a save in progress (or killed): ignored, removed at next start

A save writes into ``.tmp-*``, fsyncs every file and the directory, renames it into place
and fsyncs ``CHECKPOINT_DIR``. A directory named ``ckpt-*`` with a manifest is therefore
complete; only after that are old checkpoints removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from pathlib import Path

from .. import safeio, schemas
from ..errors import CheckpointError

FORMAT = "fittorch-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"^ckpt-e(\d+)-b(\d+)$")
_PAUSE_ENV = "FITTORCH_TEST_PAUSE_IN_SAVE"  # test-only: "N:/path/marker" pauses inside the N-th save
_saves_in_process = 0


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (damaged) or a resume may not be bit-exact."""


def checkpoint_name(epoch: int, batch_in_epoch: int) -> str:
    """Names sort by training progress: ``ckpt-e{epochs done}-b{batches done in the next epoch}``."""
    return f"ckpt-e{int(epoch):06d}-b{int(batch_in_epoch):07d}"


def position(path: str | os.PathLike) -> tuple[int, int] | None:
    m = _NAME.match(Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (partial saves are not listed)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [p for p in d.iterdir() if _NAME.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=position)


def latest(directory: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``directory``, or None (not hash-checked: see ``load_checkpoint``)."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def read_manifest(path: str | os.PathLike) -> dict:
    """The checkpoint's manifest, read with a bound and validated (see :class:`fittorch.schemas.Manifest`)."""
    p = Path(path) / MANIFEST
    try:
        data = safeio.read_regular(p, max_bytes=safeio.MAX_JSON, what="the manifest")
    except FileNotFoundError:
        raise CheckpointError(f"{p.parent} is not a complete fittorch checkpoint: it has no {MANIFEST}. "
                              f"{_previous_hint(p.parent)}") from None
    except safeio.UnsafeFile as exc:
        raise CheckpointError(f"{exc} {_previous_hint(p.parent)}") from None
    try:
        probe = schemas.loads(data, allow_nan=True)
    except ValueError:
        probe = None
    if isinstance(probe, dict) and probe.get("format") == FORMAT and isinstance(probe.get("version"), int) \
            and probe["version"] > FORMAT_VERSION:
        raise CheckpointError(f"{p.parent} was written in checkpoint format {probe['version']}, newer than "
                              f"this fittorch reads ({FORMAT_VERSION}). Upgrade fittorch to load it.")
    raw, _ = schemas.parse_json(data, schemas.Manifest, what=str(p), error=CheckpointError,
                                hint=_previous_hint(p.parent), allow_nan=True)
    return raw


def best_by(directory: str | os.PathLike, monitor: str | None = None) -> Path | None:
    """The checkpoint with the best recorded monitor value (ties: the earliest), or None."""
    best, best_key = None, None
    for path in list_checkpoints(directory):
        try:
            mon = read_manifest(path).get("monitor") or {}
        except CheckpointError:
            continue
        value = mon.get("value")
        if value is None or (monitor is not None and mon.get("name") != monitor) or value != value:
            continue
        key = value if mon.get("mode", "min") == "min" else -value
        if best_key is None or key < best_key:
            best, best_key = path, key
    return best


def read_file(path: Path, manifest: dict) -> bytes:
    """The bytes of one checkpoint file, checked against the manifest's size and SHA-256.

    Only a regular file inside the checkpoint is read (no symlink, FIFO or device), and only
    after its size matched the manifest's, so a damaged checkpoint can neither hang nor exhaust memory.
    """
    entry = (manifest.get("files") or {}).get(path.name)
    if entry is None:
        raise CheckpointError(f"{path.parent} has no '{path.name}' in its manifest; it was not written by this "
                              f"fittorch or is damaged. {_previous_hint(path.parent)}")
    try:
        data = safeio.read_regular(path, max_bytes=entry["bytes"], expected=entry["bytes"], what="checkpoint file")
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing (listed in the manifest). {_previous_hint(path.parent)}") from None
    except safeio.UnsafeFile as exc:
        raise CheckpointError(f"{path} is corrupted, truncated or replaced: {exc} (expected SHA-256 "
                              f"{entry['sha256']}, {entry['bytes']} bytes). {_previous_hint(path.parent)}") from None
    actual = hashlib.sha256(data).hexdigest()
    if len(data) != entry["bytes"] or actual != entry["sha256"]:
        raise CheckpointError(
            f"{path} is corrupted or truncated: expected SHA-256 {entry['sha256']} ({entry['bytes']} bytes), "
            f"found {actual} ({len(data)} bytes). {_previous_hint(path.parent)}"
        )
    return data


def verify(path: str | os.PathLike) -> dict:
    """Check every file of a checkpoint against its manifest; return the manifest.

    File names are validated by the manifest's schema: none may leave the checkpoint folder.
    """
    path = Path(path)
    manifest = read_manifest(path)
    for name in manifest["files"]:
        read_file(path / name, manifest)
    return manifest


def _previous_hint(path: Path) -> str:
    earlier = [p for p in list_checkpoints(path.parent) if position(p) < (position(path) or (0, 0))]
    if earlier:
        return f"The previous checkpoint is {earlier[-1]}; resume from it with resume='{earlier[-1]}'."
    return "There is no earlier checkpoint in that directory."


# -- writing -------------------------------------------------------------------------
def write_bytes(path: Path, data: bytes) -> None:
    """Write one new file of a checkpoint (``O_EXCL``: never through a planted file or link)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_checkpoint(directory: str | os.PathLike, name: str, write_files, manifest_extra: dict) -> Path:
    """Atomically create ``directory/name``: ``write_files(tmp_dir)`` writes the payload.

    On any OS error (disk full, permissions) the temporary directory is removed and a
    :class:`CheckpointError` is raised; existing checkpoints are never touched.
    """
    global _saves_in_process
    _saves_in_process += 1
    directory = Path(directory)
    final = directory / name
    tmp = directory / f".tmp-{name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        write_files(tmp)
        files = {}
        for f in sorted(tmp.iterdir()):
            with open(f, "rb") as fh:
                data = fh.read()
                os.fsync(fh.fileno())
            files[f.name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _test_pause(tmp)
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "created": time.time(), **manifest_extra,
                    "files": files}
        write_bytes(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        with open(tmp / MANIFEST, "rb") as fh:
            os.fsync(fh.fileno())
        safeio.fsync_dir(tmp)
        old = None
        if final.exists():  # the same position saved again (e.g. after resuming from an earlier one)
            old = directory / f".old-{name}-{os.getpid()}"
            os.rename(final, old)
        os.rename(tmp, final)
        safeio.fsync_dir(directory)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "the disk is full; free some space or choose another checkpoint_dir" if exc.errno in (
            errno.ENOSPC, errno.EDQUOT) else "check that the directory is writable and has free space"
        prev = latest(directory)
        kept = f"The previous checkpoint {prev} is intact." if prev else "No earlier checkpoint exists."
        raise CheckpointError(f"Could not write checkpoint {final}: {exc.strerror or exc} "
                              f"[errno {exc.errno}]; {why}. {kept}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _test_pause(tmp: Path) -> None:
    spec = os.environ.get(_PAUSE_ENV)
    if not spec:
        return
    n, _, marker = spec.partition(":")
    if int(n) == _saves_in_process:
        Path(marker).write_text(str(tmp))
        time.sleep(600)


def remove_checkpoint(path: Path) -> None:
    """Rename out of the listing first (atomic), then delete."""
    trash = path.with_name(f".del-{path.name}-{os.getpid()}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def prune(directory: str | os.PathLike, keep_last: int, keep: tuple = ()) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints and those in ``keep``; return the deleted."""
    found = list_checkpoints(directory)
    keep_set = {Path(p).resolve() for p in keep if p is not None}
    keep_set.update(p.resolve() for p in (found[-keep_last:] if keep_last > 0 else []))
    deleted = []
    for p in found:
        if p.resolve() not in keep_set:
            remove_checkpoint(p)
            deleted.append(p)
    return deleted


def clean_partial(directory: str | os.PathLike) -> None:
    """Remove what interrupted saves left behind (``.tmp-*``, ``.del-*``); restore a ``.old-*`` whose
    replacement never arrived."""
    d = Path(directory)
    if not d.is_dir():
        return
    for p in d.iterdir():
        if p.name.startswith((".tmp-ckpt-", ".del-ckpt-")) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".old-ckpt-") and p.is_dir():
            target = d / p.name[len(".old-"):].rsplit("-", 1)[0]
            if not target.exists() and (p / MANIFEST).is_file():
                os.rename(p, target)
            else:
                shutil.rmtree(p, ignore_errors=True)


def warn(message: str) -> None:
    warnings.warn(message, CheckpointWarning, stacklevel=3)

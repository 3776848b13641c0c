"""Where a study lives: a journal file next to the run (default), or a database URL.

Why Optuna's journal file by default: it is an append-only log where each operation is one
JSON line written and fsynced under a lock, so several processes on one machine share it with
no server, and a process killed at any moment leaves every completed operation intact. SQLite
would also survive a kill, but Optuna warns against it for parallel workers (writers get
"database is locked" under contention). Optuna's own file locks are files that a SIGKILLed holder
leaves behind (the next writer waits out a 30 s grace period); :class:`FlockLock` uses a
kernel ``flock`` instead, which the kernel releases the moment its holder dies.

For several machines, pass a database URL (``postgresql://user:pass@host/db``,
``mysql+pymysql://...``): Optuna's RDB storage, with row locking done by the database.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import ConfigError

JOURNAL = "study.journal"
_RDB = ("sqlite:", "postgresql", "postgres:", "mysql", "oracle", "mssql")


class FlockLock:
    """The journal's writer lock: an exclusive ``flock`` on ``path``, released by the kernel on death."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def describe(url: str | None, study_dir: Path) -> str:
    return url or str(study_dir / JOURNAL)


def open_storage(url: str | None, study_dir: Path):
    """An optuna storage for ``url`` (a journal file path or a database URL); default: the study's journal.

    Raises ConfigError, with the reason, when it cannot be opened.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url and url.startswith(_RDB) or url and "://" in url:
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=None)
        except ImportError as exc:
            raise ConfigError(f"--storage {_safe(url)}: a driver is missing ({exc}). Install it, e.g. "
                              "pip install psycopg2-binary for postgresql.") from None
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors of many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--storage {_safe(url)} cannot be opened: {first}. Check the URL, the server "
                              "and the credentials.") from None
    path = Path(url).expanduser() if url else study_dir / JOURNAL
    if path.is_dir():
        raise ConfigError(f"--storage {path} is a folder; pass a journal file path such as {path / JOURNAL}, "
                          "or a database URL.")
    if not path.parent.is_dir():
        raise ConfigError(f"--storage {path}: the folder {path.parent} does not exist. Create it first.")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
        raise ConfigError(f"--storage {path} cannot be opened for writing (permission denied).")
    _check_journal(path)
    try:
        backend = JournalFileBackend(str(path), lock_obj=FlockLock(str(path) + ".flock"))
        storage = optuna.storages.JournalStorage(backend)
        storage.get_all_studies()  # replays the log now: a damaged file fails here, before any trial
        return storage
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--storage {path} cannot be opened as an Optuna journal "
                          f"({type(exc).__name__}: {exc}).") from None


def _check_journal(path: Path) -> None:
    """A file that exists must start with an Optuna journal operation (a JSON object with op_code)."""
    import json

    if not path.exists() or path.stat().st_size == 0:
        return
    if not path.is_file():
        raise ConfigError(f"--storage {path} is not a regular file.")
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    try:
        op = json.loads(first)
    except ValueError:
        op = None
    if not isinstance(op, dict) or "op_code" not in op:
        raise ConfigError(f"--storage {path} cannot be opened as an Optuna journal: its first line is not a "
                          "journal operation. Pass another file, or a database URL.")


def _safe(url: str) -> str:
    """The URL without its password."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url

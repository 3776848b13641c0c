"""Run folders: created atomically, written by one process at a time.

``create_run_dir`` makes ``out/NAME`` (else ``NAME-2``, ``-3``, ...) with ``mkdir``, which is
atomic, so two runs started at once never share a folder. :class:`RunLock` holds an exclusive
``flock`` on ``RUN_DIR/.lock`` for the writer's lifetime (fit, resume, tune).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from .errors import CheckpointError, ConfigError, RunLockedError

MAX_NAME = 100  # characters of a run name (a folder name; file systems allow 255 bytes)
LOCK = ".lock"


def check_run_name(name) -> str:
    """A run name that is one plain folder name, or a ConfigError saying why not."""
    if not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".") \
            or any(c in name for c in "/\\\0") or len(name) > MAX_NAME or not name.isprintable():
        shown = repr(name) if len(str(name)) <= 60 else f"{str(name)[:60]!r}... ({len(str(name))} characters)"
        raise ConfigError(f"Run name {shown} is not a folder name. Use up to {MAX_NAME} letters, digits, "
                          "'-', '_' and '.', not starting with '.'.")
    return name


def create_run_dir(out: str | os.PathLike, name: str) -> Path:
    """Create and return ``out/name``, else ``out/name-2``, ``-3``, ...: ``mkdir`` is atomic, so two
    processes starting at once never share a folder."""
    check_run_name(name)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the runs folder ({exc.strerror or exc}); "
                          f"{'it is a file, not a folder' if out.is_file() else 'choose a writable folder'}.") from None
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder. Pass a folder for the run directories.")
    for n in range(1, 100_000):
        candidate = out / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"Cannot create the run folder {candidate}: {exc.strerror or exc}. Choose a writable "
                              "--out folder (and a shorter --name).") from None
    raise ConfigError(f"{out} already holds {name}, {name}-2, ... {name}-99999; choose another --name.")


class RunLock:
    """One writer per run folder: an exclusive ``flock`` on ``RUN_DIR/.lock``, held while the writer lives.

    The file holds the writer's process id and command. The kernel drops the lock when its
    process dies, even by SIGKILL; a lock file naming a process that no longer runs is
    therefore stale and is taken over (with a note). A second writer gets :class:`RunLockedError`
    naming the process that holds the lock.
    """

    def __init__(self, run_dir: str | os.PathLike, *, note=None):
        self.run_dir = Path(run_dir)
        self.fd: int | None = None
        self.note = note or (lambda msg: print(msg, file=sys.stderr))

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return self
        path = self.run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                         | getattr(os, "O_NONBLOCK", 0), 0o644)
        except OSError as exc:
            raise CheckpointError(f"Cannot open the lock file {path}: {exc.strerror or exc}. It must be a regular "
                                  "file (not a link) in a writable run folder.") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"The lock file {path} is not a regular file; remove it.")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_lock(fd) or "another process"
                raise RunLockedError(f"{self.run_dir} is in use by process {holder}: only one fit, resume or tune "
                                     "may write a run at a time. Wait for it to end (or stop it), then try "
                                     "again.") from None
            previous = _read_lock(fd)
            pid = previous.split()[0] if previous else ""
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                self.note(f"note: {path} was left by process {pid}, which no longer runs (killed?); "
                          "taking it over.")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} ({_command_line()[:200]})\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # a clean end: an empty lock file names nobody
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None


def _read_lock(fd: int) -> str:
    try:
        return os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _command_line() -> str:
    return " ".join(["fittorch", *sys.argv[1:]])

"""Safe file I/O: every file fittorch writes is atomic, every file it reads from a run is checked.

Writing (:func:`atomic_write`, :func:`atomic_writer`): the data goes to a uniquely named
temporary file created with ``O_EXCL | O_NOFOLLOW`` in the destination's folder, is fsynced,
then renamed over the destination, and the folder is fsynced. A reader sees the old complete
file or the new complete one, never a part. The temporary file is removed on any error
(disk full, Ctrl-C). ``rename`` replaces a symlink at the destination instead of following
it, so no write ever lands outside the destination's folder.

Reading (:func:`read_regular`): the path is ``lstat``-ed first; only regular files are read
(a FIFO, a device or a socket is refused before it is opened, so nothing hangs); a symlink
is followed only when ``root`` is given and its target stays inside ``root``. The file is
opened with ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat``-ed again (the checked file is the one
read), its size is compared with the expected size or the maximum *before* reading, and the
read itself is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from .errors import FittorchError, OutputError

MiB = 1 << 20
MAX_JSON = 64 * MiB  # run.json, model.json, manifest.json, state.json
MAX_CONFIG = 1 * MiB  # config.yaml
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# -- writing --------------------------------------------------------------------------------------
def _why(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full; free some space or write elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the folder {path.parent} is not writable; choose another place or fix its permissions"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) or (exc.errno == errno.ENOENT and path.parent.is_file()):
        return f"a part of {path.parent} is a file, not a folder; choose another path"
    if exc.errno == errno.EISDIR:
        return f"{path} is a folder; name a file"
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long; use a shorter one"
    return "check that the folder exists and is writable"


def output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"Could not write {path}: {exc.strerror or exc} [errno {exc.errno}]; {_why(exc, path)}. "
                       "Nothing was changed at that path.")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, text: bool = False, encoding: str = "utf-8", newline: str | None = None):
    """A file object whose content replaces ``path`` atomically when the block ends without error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as exc:
        raise output_error(path, exc) from None
    done = False
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": encoding, "newline": newline} if text else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # replaces a symlink at ``path``, never writes through it
        done = True
        fsync_dir(path.parent)
    except OSError as exc:
        if isinstance(exc, FittorchError):
            raise
        raise output_error(path, exc) from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module docs). Returns ``path``."""
    path = Path(path)
    with atomic_writer(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def fsync_dir(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """``fig.savefig`` into memory, then :func:`atomic_write` (matplotlib would follow a symlink)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", **kwargs)
    return atomic_write(path, buf.getvalue())


# -- reading -------------------------------------------------------------------------------------
class UnsafeFile(FittorchError, OSError):
    """A file that must not be read: not a regular file, a symlink leaving its folder, too large."""


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_regular(path: str | os.PathLike, *, root: str | os.PathLike | None = None, what: str = "file") -> Path:
    """The path to open: ``path`` itself, or a symlink's target inside ``root``. Raises :class:`UnsafeFile`."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"Cannot inspect {what} {path}: {exc.strerror or exc}.") from None
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        if root is None or not _inside(target, Path(os.path.realpath(root))):
            raise UnsafeFile(f"{what} {path} is a symlink to {target}, outside {root or 'its folder'}; fittorch "
                             "does not follow links out of a run folder. Replace it with the real file.")
        return check_regular(target, root=None, what=what)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise UnsafeFile(f"{what} {path} is {kind}; only regular files are read. Replace it with the real file.")
    return path


def read_regular(path: str | os.PathLike, *, max_bytes: int, expected: int | None = None,
                 root: str | os.PathLike | None = None, what: str = "file") -> bytes:
    """The bytes of a regular file, refused before reading when larger than ``max_bytes`` or not ``expected``.

    Raises ``FileNotFoundError`` when it does not exist and :class:`UnsafeFile` otherwise.
    """
    real = check_regular(path, root=root, what=what)
    try:
        fd = os.open(real, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(f"Cannot open {what} {path}: {exc.strerror or exc} [errno {exc.errno}].") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between the lstat and the open
            raise UnsafeFile(f"{what} {path} is not a regular file; only regular files are read.")
        size = st.st_size
        if expected is not None and size != expected:
            raise UnsafeFile(f"{what} {path} has {size} bytes; its manifest says {expected}. The file is truncated, "
                             "grown or replaced.")
        if size > max_bytes:
            raise UnsafeFile(f"{what} {path} has {size} bytes, more than the {max_bytes} allowed for it; "
                             "it is not a file fittorch wrote.")
        chunks, left = [], size + 1  # one byte more than announced: a file still growing is caught
        while left > 0:
            chunk = os.read(fd, min(left, 16 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) != size:
            raise UnsafeFile(f"{what} {path} changed size while it was read ({size} -> {len(data)} bytes).")
        return data
    finally:
        os.close(fd)


def open_data_file(path: str | os.PathLike, *, what: str = "file"):
    """A binary file object for the user's own data file, opened first and checked after.

    Unlike a run folder's files, a data file may be a symlink (it is followed). It is opened with
    ``O_NONBLOCK`` and then ``fstat``-ed, so a FIFO or a device put at the path is never read or
    waited on: :class:`UnsafeFile`. ``FileNotFoundError`` when it does not exist.
    """
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UnsafeFile(f"{what} {path} is {kind}; only regular files are read.")
    return os.fdopen(fd, "rb")


def read_text(path: str | os.PathLike, *, max_bytes: int, root=None, what: str = "file") -> str:
    """:func:`read_regular` decoded as UTF-8 (a decode error is an :class:`UnsafeFile`)."""
    data = read_regular(path, max_bytes=max_bytes, root=root, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeFile(f"{what} {path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}). "
                         "Save it as UTF-8.") from None


def file_size(path: str | os.PathLike, *, root=None, what: str = "file") -> int:
    """The size of a checked regular file (see :func:`check_regular`)."""
    return os.stat(check_regular(path, root=root, what=what)).st_size

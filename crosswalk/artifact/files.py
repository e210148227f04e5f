"""File-system steps that builds and releases share: an exclusive lock, a private-named
directory to write into, syncing a directory, removing a tree, and swapping two
directories atomically."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

#: Errors with which renameat2 says that it cannot exchange here (an old kernel, a file
#: system without the flag), rather than that something is wrong.
_EXCHANGE_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@contextlib.contextmanager
def exclusive_lock(path: Path, busy: Exception) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the duration
    of the block; raise ``busy`` at once if another process holds it. The lock ends with
    the process, however it ends; the file stays."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise busy from exc
        yield
    finally:
        os.close(fd)


def make_dir_beside(parent: Path, prefix: str) -> Path:
    """A new directory in ``parent`` named ``prefix`` and a random suffix, created with the
    mode the umask gives (``tempfile.mkdtemp`` makes it 0700, and a build directory swapped
    into place would then be readable by its owner alone)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free name for a new directory", str(parent))


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (created, renamed, removed) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def force_rmtree(path: Path) -> None:
    """Remove a directory tree even where its directories were already made read-only."""
    if not path.exists():
        return
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(root, d), stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` (both must exist) in one atomic step, with Linux's
    ``renameat2(RENAME_EXCHANGE)``: at every instant each name holds one of the two.
    Returns False, having changed nothing, where the system cannot (not Linux, an old
    C library or kernel, a file system without it); raises :class:`OSError` on any
    other failure."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _EXCHANGE_UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))

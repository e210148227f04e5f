"""The key that signs the review UI's session cookies, kept out of the review store.

Where the key comes from, first found wins:

1. the ``CROSSWALK_SECRET_KEY`` environment variable (the key itself);
2. a key file named by ``crosswalk serve --secret-key-file PATH``, else by the
   ``CROSSWALK_SECRET_KEY_FILE`` environment variable;
3. the default key file of the store,
   ``$XDG_CONFIG_HOME/crosswalk/keys/<16 hex digits>.key`` (``~/.config`` when
   ``XDG_CONFIG_HOME`` is unset), named by the SHA-256 of the store's absolute
   path, so that it never sits beside the data it protects.

A missing key file is created with a random key, mode 0600, in a directory
created 0700. A key file that the group or others may read or write is
refused. ``crosswalk reviewers rotate-key`` replaces the key (see
:func:`rotate_key`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

from crosswalk.errors import ReviewError

#: Environment variable holding the key itself.
KEY_ENV = "CROSSWALK_SECRET_KEY"
#: Environment variable naming a key file.
KEY_FILE_ENV = "CROSSWALK_SECRET_KEY_FILE"
#: Shortest key accepted from a file or the environment.
MIN_KEY_LENGTH = 32


def default_key_file(store: str | Path) -> Path:
    """The default key file of the review store at ``store`` (outside its directory)."""
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(config_home):
        base = Path(config_home)
    else:
        try:
            base = Path.home() / ".config"
        except RuntimeError as exc:
            raise ReviewError(
                "cannot find a home directory for the session key file. Fix: set "
                f"XDG_CONFIG_HOME or {KEY_FILE_ENV}, or give --secret-key-file."
            ) from exc
    digest = hashlib.sha256(str(Path(store).resolve()).encode("utf-8")).hexdigest()[:16]
    return base / "crosswalk" / "keys" / f"{digest}.key"


def key_file(store: str | Path, explicit: str | Path | None = None) -> Path:
    """The key file in use for ``store``: ``explicit``, else ``$CROSSWALK_SECRET_KEY_FILE``,
    else :func:`default_key_file`."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(KEY_FILE_ENV, "")
    return Path(from_env) if from_env else default_key_file(store)


def session_key(store: str | Path, explicit_file: str | Path | None = None) -> str:
    """The session-signing key for ``store``: ``$CROSSWALK_SECRET_KEY``, else the key
    file (:func:`key_file`), created with a new random key if it does not exist."""
    from_env = os.environ.get(KEY_ENV, "")
    if from_env:
        if len(from_env) < MIN_KEY_LENGTH:
            raise ReviewError(
                f"{KEY_ENV} is too short ({len(from_env)} characters). Fix: set it to at least "
                f"{MIN_KEY_LENGTH} random characters, e.g. "
                "$(python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        return from_env
    path = key_file(store, explicit_file)
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    _create(path, secrets.token_hex(32))
    return read_key(path)


def read_key(path: Path) -> str:
    """The key in ``path``; refused if the file is open to the group or others.

    Raises FileNotFoundError when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ReviewError(f"{path}: cannot read the session key file ({exc}).") from exc
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ReviewError(f"{path}: the session key file is not a regular file.")
        if mode & 0o077:
            raise ReviewError(
                f"{path}: the session key file is open to other users "
                f"(mode {stat.S_IMODE(mode):04o}). Fix: chmod 600 {path} (then consider "
                "'crosswalk reviewers rotate-key', since others could read the key)."
            )
        key = handle.read().strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ReviewError(
            f"{path}: the session key file holds {len(key)} characters, fewer than "
            f"{MIN_KEY_LENGTH}. Fix: run 'crosswalk reviewers rotate-key' to write a new key."
        )
    return key


def rotate_key(store: str | Path, explicit_file: str | Path | None = None) -> Path:
    """Replace the key file of ``store`` with a new random key; return its path.

    The new file is written beside the old one (0600) and renamed over it, so
    that a reader sees the old key or the new one, whole."""
    path = key_file(store, explicit_file)
    _private_dir(path.parent)
    tmp = _write_private(path.parent, secrets.token_hex(32))
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReviewError(f"{path}: cannot replace the session key file ({exc}).") from exc
    return path


def _create(path: Path, key: str) -> None:
    """Create ``path`` holding ``key`` unless it exists (then leave it as it is)."""
    _private_dir(path.parent)
    tmp = _write_private(path.parent, key)
    try:
        os.link(tmp, path)  # fails if another process created the file first: keep theirs
    except FileExistsError:
        pass
    except OSError as exc:
        raise ReviewError(f"{path}: cannot create the session key file ({exc}).") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _write_private(directory: Path, key: str) -> Path:
    """A new file in ``directory`` holding ``key``, created 0600 (O_EXCL), synced."""
    for _ in range(10):
        tmp = directory / f".key-{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ReviewError(f"{directory}: cannot write a session key file ({exc}).") from exc
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return tmp
    raise ReviewError(f"{directory}: cannot find a free name for a session key file.")


def _private_dir(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700."""
    missing = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    for parent in reversed(missing):
        try:
            parent.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ReviewError(
                f"{parent}: cannot create the directory of the session key file ({exc})."
            ) from exc

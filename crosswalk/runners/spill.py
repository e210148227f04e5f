"""Keeping a large frame's text out of memory: its Arrow text columns are written to an
Arrow file and read back memory-mapped, so that the operating system pages them in
when they are read and may drop them again when memory runs short (they are clean
pages of a file), instead of the process holding them. A runner's choice for the
datasets it names, never a stage's: the frame is equal to the one it replaces.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

#: A frame is spilled only when its text takes more than this share of the machine's
#: memory (below it, holding the text costs less than writing and mapping it).
SPILL_SHARE = 0.25


def machine_memory() -> int:
    """The machine's physical memory in bytes (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


#: File systems whose files are held in memory: a frame spilled there would save none.
_IN_MEMORY = frozenset({"tmpfs", "ramfs"})


def in_memory_filesystem(directory: str | Path) -> bool:
    """Whether ``directory`` is on a file system held in memory (tmpfs), by the mount
    table (False where there is none to read)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    path = os.path.realpath(directory)
    best, kind = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind in _IN_MEMORY


def _arrow_text(series: pd.Series) -> pa.ChunkedArray | None:
    """The Arrow array behind a pyarrow-backed text column (None for any other column)."""
    data = getattr(series.array, "_pa_array", None)
    if isinstance(data, pa.ChunkedArray) and pa.types.is_large_string(data.type):
        return data
    return None


def spilled(
    frame: pd.DataFrame, directory: str | Path | None = None, *, part: float = 1.0
) -> pd.DataFrame:
    """``frame``, with its Arrow text columns read from a memory-mapped Arrow file when
    they take more than ``part`` of :data:`SPILL_SHARE` of the machine's memory (a
    runner spilling several frames of one run gives each its expected share of the
    largest); ``frame`` itself otherwise. The file is written in ``directory`` (by default
    the system's temporary directory: ``TMPDIR``) and unlinked at once: its space is
    freed when the last column read from it is. When it cannot be written (a full disk), the frame stays in memory,
    with a warning; on a file system held in memory (tmpfs), it stays there silently."""
    labels = {str(c): c for c in frame.columns}
    texts = {name: a for name, c in labels.items() if (a := _arrow_text(frame[c])) is not None}
    size = sum(a.nbytes for a in texts.values())
    if not texts or size <= part * SPILL_SHARE * machine_memory():
        return frame
    if in_memory_filesystem(directory if directory is not None else tempfile.gettempdir()):
        return frame
    table = pa.table(texts)
    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="crosswalk-spill-", suffix=".arrow", dir=directory)
        os.close(fd)
        with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        mapped = ipc.open_file(pa.memory_map(path, "r")).read_all()
    except OSError as e:
        warnings.warn(
            f"could not write {size / 2**30:.1f} GiB of the records' text to a file "
            f"({e}); they stay in memory. Fix: set TMPDIR to a directory with room for "
            "them.",
            ResourceWarning,
            stacklevel=2,
        )
        return frame
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
    del table
    out = frame.copy(deep=False)
    for name in texts:
        column = labels[name]
        dtype = frame[column].dtype
        array = type(frame[column].array)(mapped.column(name))
        out[column] = pd.Series(array, index=frame.index, dtype=dtype, copy=False)
    return out

"""Where outputs go and how they are written.

One rule for generate, import, rollout, train, study, nclaw, render, export and mesh writes: the folder of an
output path (and its parents) is made when it is missing; an OutputError names the path when it cannot be.
Files are written atomically through `atomic_path` (a temporary name beside the file, then a rename), so a
reader never sees half a file. (The HDF5 trajectory store has its own transaction: meshsim.datasets.writer.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from meshsim.errors import OutputError


def output_folder(path: str | os.PathLike) -> Path:
    """Create the folder of output file `path` if missing and check it is writable; returns the folder."""
    return make_folder(Path(path).parent, for_path=path)


def make_folder(folder: str | os.PathLike, for_path: str | os.PathLike | None = None) -> Path:
    """Create `folder` and its parents if missing, and check it is writable; OutputError with the fix otherwise."""
    folder = Path(folder)
    what = f"cannot write {for_path}: " if for_path is not None else ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what}{folder} is a file, not a folder; choose another path") from None
    except OSError as err:
        raise OutputError(f"{what}cannot create folder {folder} ({err.strerror}); choose another path") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{what}folder {folder} is not writable; choose another path")
    return folder


@contextmanager
def atomic_path(path: str | os.PathLike, *, unique: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; it replaces `path` when the block ends without error and
    is removed when the block raises. The name keeps `path`'s suffix (writers that pick a format from it work).

    The temporary name is fixed (`.NAME.tmp.SUFFIX`), so the next write of the same file replaces what a killed
    process left; `unique=True` makes it unique per call, for files several processes may write at once.
    """
    path = Path(path)
    tag = f".{os.getpid()}.{uuid.uuid4().hex[:8]}" if unique else ""
    tmp = path.with_name(f".{path.name}{tag}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: str | bytes, *, unique: bool = False) -> None:
    """Write text or bytes to `path` atomically (see `atomic_path`)."""
    with atomic_path(path, unique=unique) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's data to disk (a folder: so that a rename in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_dead_temporaries(folder: Path, prefix: str, suffix: str) -> None:
    """Remove `folder/PREFIX<pid>.*SUFFIX` files whose writing process `pid` is gone (it was killed)."""
    for tmp in folder.glob(f"{prefix}*{suffix}"):
        pid = tmp.name[len(prefix) :].split(".")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True

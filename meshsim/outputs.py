"""Where outputs go: every command that writes a file creates the folder that holds it.

One rule for generate, import, rollout, train, study, nclaw, render, export and mesh writes: the folder of an
output path (and its parents) is made when it is missing; an OutputError names the path when it cannot be.
"""

from __future__ import annotations

import os
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

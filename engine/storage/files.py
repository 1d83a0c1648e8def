"""Durable file primitives: fsync'd writes, atomic replace, directory fsync."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder: so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_path


def write_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data``: write a temp file, fsync, rename, fsync the folder.
    A failure before the rename removes the temp file and raises (``path`` is as before).
    Once renamed, the new file is what every reader sees: a folder fsync that fails after
    that only warns, since raising would tell the caller a visible change did not happen."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsync_dir(path.parent)
    except OSError as e:
        warnings.warn(f"{path} was replaced but its folder could not be fsynced ({e}): a "
                      "power loss now may bring back the previous version", RuntimeWarning,
                      stacklevel=2)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())

"""The data directory: an exclusive lock, and one folder per collection.

Layout::

    <uri>/.lock                       flock'd by the one process that writes here
    <uri>/collections/<name>/manifest.json, wal.log, segments/, deletes/

A second process that opens the directory gets a clear error instead of a store that two
writers corrupt.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from .collection import MANIFEST
from .errors import DirectoryLocked


class DataDir:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "collections").mkdir(exist_ok=True)
        self._lock_fh = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.seek(0)
            holder = self._lock_fh.read().strip() or "another process"
            self._lock_fh.close()
            raise DirectoryLocked(
                f"data directory {self.root} is in use by {holder}: close that client "
                "(client.close()) or point this one at another uri") from None
        self._lock_fh.seek(0)
        self._lock_fh.truncate()
        self._lock_fh.write(f"pid {os.getpid()}")
        self._lock_fh.flush()

    def collection_path(self, name: str) -> Path:
        return self.root / "collections" / name

    def names(self) -> list[str]:
        base = self.root / "collections"
        out = []
        for child in sorted(base.iterdir()):
            if child.is_dir() and (child / MANIFEST).exists() and not child.name.endswith(
                    (".creating", ".dropping")):
                out.append(child.name)
            elif child.name.endswith((".creating", ".dropping")):
                shutil.rmtree(child, ignore_errors=True)
        return out

    def remove(self, name: str) -> None:
        path = self.collection_path(name)
        trash = path.with_name(path.name + ".dropping")
        os.replace(path, trash)  # one rename: the collection is gone, even if rmtree stops
        shutil.rmtree(trash, ignore_errors=True)

    def close(self) -> None:
        if not self._lock_fh.closed:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()

"""The data directory: an exclusive lock, a catalog of names, one folder per collection.

Layout::

    <uri>/.lock                       flock'd by the one process that writes here
    <uri>/catalog.json                {"next_id": n, "collections": {name: id},
                                       "aliases": {alias: name},
                                       "databases": {name: {"id", "properties"}}},
                                       checksummed
    <uri>/collections/<id>/           manifest.json, wal.log, segments/, deletes/, index/
    <uri>/databases/<id>/             another database: the same layout again (a catalog
                                      and collections/ of its own)

The data directory itself is the ``default`` database; every other database is a folder
under ``databases/``, named by an id, listed in the root catalog.

Folders are named by ids the catalog assigns (``00000001``), never by a name a user gave.
The catalog is replaced atomically. A create writes its folder first and lists it last; a
drop unlists first and removes the folder after: a folder the catalog does not list is a
create or drop that did not finish, and is removed at open.

A second process that opens the directory gets a clear error instead of a store that two
writers corrupt.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from .errors import DirectoryLocked, StorageError, WriteFailed
from .storage.checksum import CorruptFile, open_json, sealed_json
from .storage.files import write_atomic

CATALOG = "catalog.json"
FORMAT = 2


class DataDir:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.base = self.root / "collections"
        self.base.mkdir(exist_ok=True)
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
        try:
            self._lock_fh.seek(0)
            self._lock_fh.truncate()
            self._lock_fh.write(f"pid {os.getpid()}")
            self._lock_fh.flush()
            self._catalog = read_catalog(self.root)
        except BaseException:
            self.close()
            raise

    def names(self) -> dict[str, Path]:
        """Every listed collection's folder; folders not listed are removed (unfinished
        creates and drops)."""
        listed = {self._folder(i) for i in self._catalog["collections"].values()}
        for child in self.base.iterdir():
            if child not in listed:
                shutil.rmtree(child, ignore_errors=True)
        return {name: self._folder(i) for name, i in sorted(self._catalog["collections"].items())}

    def rename(self, old: str, new: str, aliases: dict[str, str]) -> None:
        """List collection ``old`` as ``new``, with ``aliases`` (durably, at once)."""
        cols = {(new if n == old else n): i for n, i in self._catalog["collections"].items()}
        try:
            self._save({**self._catalog, "collections": cols, "aliases": aliases})
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"Collection {old} was not "
                              "renamed: free disk space and retry") from e

    def replace(self, name: str, folder: Path) -> None:
        """List ``folder`` (written already) as collection ``name`` in place of its folder
        now; the old folder goes with ``delete``."""
        cols = {**self._catalog["collections"], name: int(folder.name)}
        try:
            self._save({**self._catalog, "collections": cols})
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"Collection {name} was not "
                              "truncated: free disk space and retry") from e

    def aliases(self) -> dict[str, str]:
        """Alias -> the collection it names."""
        return dict(self._catalog.get("aliases", {}))

    def set_aliases(self, aliases: dict[str, str], undone: str) -> None:
        """Replace the aliases durably. A refused write raises WriteFailed saying
        ``undone`` and changes nothing."""
        try:
            self._save({**self._catalog, "aliases": dict(sorted(aliases.items()))})
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"{undone}: free disk space and "
                              "retry") from e

    # -- databases (listed in the root directory's catalog) -------------------------------
    def databases(self) -> dict[str, tuple[Path, dict]]:
        """Every database but ``default`` (whose collections are this directory's own):
        name -> (its folder, its properties). Folders not listed are removed (unfinished
        creates and drops)."""
        dbs = self._catalog.get("databases", {})
        listed = {self._db_folder(d["id"]) for d in dbs.values()}
        if self.db_base.exists():
            for child in self.db_base.iterdir():
                if child not in listed:
                    shutil.rmtree(child, ignore_errors=True)
        return {name: (self._db_folder(d["id"]), dict(d["properties"]))
                for name, d in sorted(dbs.items())}

    @property
    def db_base(self) -> Path:
        return self.root / "databases"

    def _db_folder(self, did: int) -> Path:
        return self.db_base / f"{int(did):08d}"

    def new_database_folder(self) -> Path:
        """A fresh database folder path (not created) under a new id."""
        did = self._catalog.get("next_db_id", 1)
        self._catalog["next_db_id"] = did + 1
        return self._db_folder(did)

    def set_databases(self, dbs: dict[str, tuple[Path, dict]], undone: str) -> None:
        """List exactly ``dbs`` (name -> (folder, properties)), durably. A refused write
        raises WriteFailed saying ``undone`` and changes nothing."""
        table = {n: {"id": int(folder.name), "properties": dict(props)}
                 for n, (folder, props) in sorted(dbs.items())}
        try:
            self._save({**self._catalog, "databases": table})
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"{undone}: free disk space and "
                              "retry") from e

    def _folder(self, cid: int) -> Path:
        return self.base / f"{int(cid):08d}"

    def new_folder(self) -> Path:
        """A fresh collection folder path (not created) under a new id; ``add`` lists it."""
        cid = self._catalog["next_id"]
        self._catalog["next_id"] += 1
        return self._folder(cid)

    def add(self, name: str, folder: Path) -> None:
        """List ``folder`` (from ``new_folder``, already written) as collection ``name``. A
        refused write raises WriteFailed and changes nothing."""
        cat = {**self._catalog, "collections": {**self._catalog["collections"],
                                                 name: int(folder.name)}}
        try:
            self._save(cat)
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"Collection {name} was not "
                              "created: free disk space and retry") from e

    def unlist(self, name: str) -> None:
        """Take ``name`` out of the catalog (durably); its folder goes with ``delete``. A
        refused write raises WriteFailed and changes nothing."""
        cols = {n: i for n, i in self._catalog["collections"].items() if n != name}
        try:
            self._save({**self._catalog, "collections": cols})
        except OSError as e:
            raise WriteFailed(str(self.root / CATALOG), e, f"Collection {name} was not "
                              "dropped: free disk space and retry") from e

    def delete(self, folder: Path) -> None:
        """Remove an unlisted collection folder (what stops half-way is removed at open)."""
        trash = folder.with_name(folder.name + ".dropping")
        if folder.exists():
            os.replace(folder, trash)  # one rename: the collection is gone, even if rmtree stops
        shutil.rmtree(trash, ignore_errors=True)

    def _save(self, cat: dict) -> None:
        write_atomic(self.root / CATALOG, sealed_json(cat))
        self._catalog = cat

    def close(self) -> None:
        if not self._lock_fh.closed:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()


def read_catalog(root: Path) -> dict:
    """The catalog of the data directory ``root`` (an empty one when there is none yet)."""
    path = root / CATALOG
    if not path.exists():
        if any((root / "collections").iterdir()):
            raise StorageError("(all)", "the catalog", path, FileNotFoundError("missing"),
                               "Collections exist but the catalog that names them does not: "
                               "this directory was written by an older Hotset or the catalog "
                               "was deleted.")
        return {"format": FORMAT, "next_id": 1, "collections": {}}
    try:
        cat = open_json(path.read_bytes(), path)
    except (OSError, CorruptFile) as e:
        raise StorageError("(all)", "the catalog", path, e,
                           "The data directory cannot be opened.") from e
    return cat

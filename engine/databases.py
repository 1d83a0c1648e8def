"""The databases of one data directory: Milvus's namespaces for collections.

``default`` is the data directory itself; every other database is a folder of the same
layout under ``databases/<id>/``, listed (with its properties) in the root catalog
(``catalog.py``). Each is a :class:`Database` with its own catalog, lock and load states;
all share the default database's workers (devices), each allocator through an
``AllocatorView``, so one device has one budget and ``memory_info()`` names another
database's collections ``<database>/<collection>``.

Properties Hotset honours: ``database.max.collections`` (a create past it is refused),
``database.force.deny.writing`` and ``database.force.deny.reading`` (those calls are
refused with Milvus's quota code 9), and ``database.replica.number`` of 1. Others (disk
quota, resource groups, time zone) would change nothing here and are refused, not stored.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from .workers import Workers
from .collection import Collection, read_manifest
from .database import Database
from .errors import DatabaseNotFound, MilvusException, ParamError, WriteFailed
from .names import check_name, shown
from .storage.files import fsync_path

DEFAULT = "default"
HEARTBEAT_S = 5.0  # how often Ray workers are pinged when nothing else reaches them
MAX_DATABASES = 64  # Milvus's default rootCoord.maxDatabaseNum
PROPERTIES = ("database.max.collections", "database.force.deny.writing",
              "database.force.deny.reading", "database.replica.number")


class Databases:
    def __init__(self, root: Any, devices: list, memory_limit: int | None, seal_bytes: int,
                 verify: bool, remote: list | None = None,
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        workers = Workers.local(devices, memory_limit)
        if remote:
            workers = Workers([*workers, *remote])
        self.default = Database(root, workers, seal_bytes, verify)
        self.default.on_workers_lost = self.lose_workers
        self._heartbeat = None
        self._args = (seal_bytes, verify)
        self._lock = threading.Lock()  # the table of databases; each has its own lock
        self._dbs: dict[str, Database] = {DEFAULT: self.default}
        self._folders: dict[str, Path] = {}
        try:
            for name, (folder, props) in self.default._dir.databases().items():
                if name == DEFAULT:
                    self.default.properties = props
                    continue
                self._dbs[name] = self._open(name, folder)
                self._dbs[name].properties = props
                self._folders[name] = folder
        except BaseException:
            self.close()
            raise
        if remote:
            from .cluster import Heartbeat

            self._heartbeat = Heartbeat(workers, heartbeat_s, self.lose_workers)

    def _open(self, name: str, folder: Path) -> Database:
        seal_bytes, verify = self._args
        db = Database(folder, self.default.workers.view(name), seal_bytes, verify, name=name)
        db.on_workers_lost = self.lose_workers
        return db

    def lose_workers(self, names: list[str]) -> None:
        """Ray workers found dead, by a read, a load state or the heartbeat: every
        database serves its segments that were on them from replicas or re-places them
        (the workers are shared; each database's lock is taken in turn)."""
        with self._lock:
            dbs = list(self._dbs.values())
        for db in dbs:
            db.lose_workers(names)

    # -- lookups ----------------------------------------------------------------------------
    def get(self, name: str | None) -> Database:
        """The database ``name`` ("" or None: ``default``), or 800."""
        name = name or DEFAULT
        with self._lock:
            db = self._dbs.get(name)
        if db is None:
            if not isinstance(name, str):
                raise ParamError(f"db_name must be a string, got {type(name).__name__}")
            raise DatabaseNotFound(shown(name))
        return db

    def list(self) -> list[str]:
        with self._lock:
            return [DEFAULT, *sorted(n for n in self._dbs if n != DEFAULT)]

    def describe(self, name: str) -> dict:
        db = self.get(name)
        return {"name": db.name, **db.properties}

    # -- changes ----------------------------------------------------------------------------
    def create(self, name: str, properties: dict | None) -> None:
        check_name("database", name)
        props = _checked(properties)
        with self._lock:
            if name in self._dbs:
                raise MilvusException(f"database already exist: {name}: pick another name",
                                      code=65535)
            if len(self._dbs) >= MAX_DATABASES:
                raise MilvusException(f"database number ({len(self._dbs)}) exceeds max "
                                      f"configuration ({MAX_DATABASES}): drop one first",
                                      code=65535)
            folder = self.default._dir.new_database_folder()
            db = None
            try:
                db = self._open(name, folder)
                self._save({**self._table(), name: (folder, props)},
                           f"Database {name} was not created")
            except BaseException:
                if db is not None:
                    db.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            db.properties = props
            self._dbs[name] = db
            self._folders[name] = folder

    def drop(self, name: str) -> None:
        check_name("database", name)
        with self._lock:
            if name == DEFAULT:
                raise MilvusException("can not drop default database", code=65535)
            db = self._dbs.get(name)
            if db is None:
                return  # Milvus: dropping a missing database succeeds
            if db.collections or db.damaged:
                raise MilvusException(f"database:{name} not empty, must drop all collections "
                                      "before drop database", code=65535)
            table = self._table()
            del table[name]
            self._save(table, f"Database {name} was not dropped")
            del self._dbs[name]
            folder = self._folders.pop(name)
        db.close()
        shutil.rmtree(folder, ignore_errors=True)  # unlisted: removed at open if this stops

    def alter(self, name: str, properties: dict | None, delete_keys: list | None) -> None:
        """Set ``properties`` and remove ``delete_keys`` (durably, at once)."""
        db = self.get(name)
        keys = list(delete_keys or [])
        if not all(isinstance(k, str) for k in keys):
            raise ParamError("property keys must be strings")
        with self._lock:
            props = {k: v for k, v in {**db.properties, **_checked(properties)}.items()
                     if k not in keys}
            table = self._table()
            table[db.name] = (table[db.name][0], props)
            self._save(table, f"The properties of database {db.name} were not changed")
            db.properties = props

    def move(self, src: Database, old: str, target: str, new: str) -> None:
        """Rename collection ``old`` of ``src`` to ``new`` in database ``target``. Its folder
        is copied into the target and listed there before it is unlisted here, so a crash
        leaves it in one database or both (drop one), never in neither."""
        dst = self.get(target)
        if dst is src:
            src.rename_collection(old, new)
            return
        check_name("collection", new)
        first, second = sorted((src, dst), key=lambda d: d.name)
        with first.lock, second.lock:
            if old in src.aliases:
                raise ParamError(f"{old} is an alias: rename the collection by its own name "
                                 f"({src.aliases[old]})")
            coll = src.get(old)
            if any(c == coll.name for c in src.aliases.values()):
                raise ParamError(f"collection {coll.name} has aliases: drop them before moving "
                                 f"it to database {dst.name}")
            if new in dst.collections or new in dst.damaged or new in dst.aliases:
                raise ParamError(f"duplicated new collection name {new} with other collection "
                                 f"name or alias in database {dst.name}: pick another name")
            dst.check_room_for_collection()
            loaded = src.residency.get(coll.name) is not None
            folder = dst._dir.new_folder()
            try:
                shutil.copytree(coll.path, folder)
                _fsync_tree(folder)
                dst._dir.add(new, folder)
            except OSError as e:
                shutil.rmtree(folder, ignore_errors=True)
                raise WriteFailed(str(folder), e, f"Collection {old} was not moved: free disk "
                                  "space and retry") from e
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            src._dir.unlist(coll.name)
            src.residency.release(coll, persist=False)
            del src.collections[coll.name]
            coll.close()
            src._dir.delete(coll.path)
            moved = Collection(folder, read_manifest(folder), dst.seal_bytes)
            moved.name = new
            dst._opened(moved)
            if loaded:
                dst.residency.load_intended(moved)

    def _table(self) -> dict[str, tuple[Path, dict]]:
        table = {n: (self._folders[n], db.properties) for n, db in self._dbs.items()
                 if n != DEFAULT}
        table[DEFAULT] = (self.default._dir.root / "databases" / f"{0:08d}",
                          self.default.properties)
        return table

    def _save(self, table: dict, undone: str) -> None:
        self.default._dir.set_databases(table, undone)

    def close(self) -> None:
        if self._heartbeat is not None:  # before the actors are stopped on purpose
            self._heartbeat.stop()
        for name, db in list(self._dbs.items()):
            if name != DEFAULT:
                db.close()
        self.default.close()
        self.default.workers.close()


def _checked(properties: dict | None) -> dict[str, str]:
    """Database properties as Milvus stores them (strings), each one Hotset honours."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise ParamError(f"database properties must be a dict, got "
                         f"{type(properties).__name__}")
    out = {}
    for key, value in properties.items():
        if key not in PROPERTIES:
            raise ParamError(f"database property {shown(str(key))} is not supported by "
                             f"Hotset: use one of {list(PROPERTIES)}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key == "database.max.collections":
            if not text.isdigit() or int(text) < 1:
                raise ParamError(f"{key} must be a positive integer, got {shown(text)}")
        elif key == "database.replica.number":
            if text != "1":
                raise ParamError(f"{key} must be 1: Hotset keeps one copy of a loaded "
                                 "collection on its device")
        else:
            text = text.lower()
            if text not in ("true", "false"):
                raise ParamError(f"{key} must be true or false, got {shown(text)}")
        out[key] = text
    return out


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (a copy is durable before it is listed)."""
    for folder, _, files in os.walk(root):
        for f in files:
            fsync_path(Path(folder) / f)
        fsync_path(Path(folder))
    fsync_path(root.parent)

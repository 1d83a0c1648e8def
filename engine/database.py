"""The database: one data directory, its collections, and the lock every request takes.

It owns the catalog (names -> folders, aliases -> names), the open collections, the ones
that could not be opened (damaged: every call on them says so, drop works), the device
allocator and the residency service. An alias works wherever a collection name does: it
is resolved here, once, so every room below sees the collection's own name. Each method takes the lock (shared for reads, alone for changes),
finds the collection by its checked name and hands the work to the room that does it:
storage (``Collection``), residency, ``reads`` or ``writes``. Front ends call these
methods and only translate.
"""
from __future__ import annotations

import shutil
import warnings
import zlib
from pathlib import Path
from typing import Any

from . import hybrid, reads, writes
from . import search as _search
from .workers import Workers
from .catalog import DataDir
from .collection import Collection, read_manifest
from .errors import (AliasConflict, AliasNotFound, CollectionNotFound,
                     IndexCannotBeDropped, MilvusException, ParamError, PartitionNotFound,
                     StorageError, WorkerLost, WriteFailed)
from . import properties as collection_properties
from .index import IndexSpec, registry, scalar
from .loader import LoadState
from .locks import RWLock
from .names import check_index_lookup, check_name, check_names
from .residency import Residency
from .schema import CollectionSchema
from .storage.manifest import DEFAULT_PARTITION
from .storage.wal import Kind


def _index_not_found(index_name: str) -> MilvusException:
    return MilvusException(f"index not found[indexName={index_name}]: see list_indexes()",
                           code=700)


def _no_partitions_by_hand(coll: Collection, create: bool = False) -> None:
    """Milvus: with a partition key, partitions are the key's to choose."""
    key = coll.schema.partition_key
    if key is not None:
        what = ("disable create partition if partition key mode is used" if create else
                "not support manually specifying the partition names if partition key mode "
                "is used")
        raise ParamError(f"{what}: {coll.name} partitions its rows by {key.name}; filter on "
                         "that field instead")


class Database:
    def __init__(self, root: Any, workers: Workers, seal_bytes: int, verify: bool,
                 name: str = "default") -> None:
        """``name`` is the database this is; ``workers`` the devices it serves from
        (``databases.py`` opens the others, each with a view of the default database's
        workers: one device, one budget)."""
        self.lock = RWLock()
        self.workers = workers
        self.device = workers.coordinator.device
        self.name = name
        self.properties: dict[str, str] = {}  # set by databases.py; enforced here
        self.on_workers_lost = self.lose_workers
        self._dir = DataDir(root)
        try:
            self.allocator = workers.coordinator.allocator
            self.residency = Residency(workers, self.lock)
            self.seal_bytes = int(seal_bytes)
            self.verify = bool(verify)
            self.collections: dict[str, Collection] = {}
            self.aliases: dict[str, str] = self._dir.aliases()
            self.compactions = 0  # job ids handed out (a compaction completes in its call)
            self.damaged: dict[str, tuple[Path, Exception]] = {}  # could not be opened
            self.closed = False
            for name, path in self._dir.names().items():
                try:
                    coll = Collection(path, read_manifest(path), self.seal_bytes)
                except Exception as e:  # one damaged collection must not stop the others
                    self.damaged[name] = (path, e)
                else:
                    coll.name = name  # the catalog's name is the truth (see rename)
                    self._opened(coll)
            for coll in self.collections.values():  # restore persisted load intent (rule 9)
                self.residency.restore(coll)
        except BaseException:  # the directory must not stay locked by a database never made
            self._dir.close()
            raise

    def _opened(self, coll: Collection) -> None:
        coll.verify = self.verify
        coll.device = self.device
        self.collections[coll.name] = coll

    # -- lookups (the caller holds the lock) ----------------------------------------------
    def resolve(self, name: str) -> str:
        """The collection ``name`` stands for (itself, or what the alias ``name`` names)."""
        return self.aliases.get(name, name)

    def get(self, name: str) -> Collection:
        if self.closed:
            raise MilvusException("client is closed: create a new MilvusClient")
        check_name("collection", name)
        name = self.resolve(name)
        coll = self.collections.get(name)
        if coll is None:
            self._refuse_damaged(name)
            raise CollectionNotFound(name)
        return coll

    def _refuse_damaged(self, name: str) -> None:
        """Every call on a collection whose files could not be read says so (drop works)."""
        if name in self.damaged:
            path, cause = self.damaged[name]
            raise StorageError(name, "the files", path, cause,
                               "It cannot be used until it is repaired; the others work.")

    @staticmethod
    def partition(coll: Collection, name: str | None) -> str:
        if name:
            _no_partitions_by_hand(coll)
        part = check_name("partition", name) if name else DEFAULT_PARTITION
        if part not in coll.partitions:
            raise PartitionNotFound(part)
        return part

    # -- collections ----------------------------------------------------------------------
    def create_collection(self, name: str, schema: CollectionSchema, index_params: Any,
                          properties: dict | None = None) -> bool:
        """Create ``name``; False when an identical one exists already (Milvus succeeds).
        Collection properties (``collection.ttl.seconds``, ``mmap.enabled``, ...) would
        change what is stored or returned and are not implemented: refused, not ignored."""
        check_name("collection", name)
        props = collection_properties.checked(properties)
        schema.validate()
        specs = self._checked_specs(schema, index_params or [])
        with self.lock:
            self._refuse_damaged(name)
            if name in self.aliases:
                raise AliasConflict(f"collection name [{name}] conflicts with an existing "
                                    "alias, please choose a unique name")
            if name in self.collections:
                if self.collections[name].schema == schema:
                    return False
                raise ParamError(f"create duplicate collection with different parameters, "
                                 f"collection: {name}: drop it first or pick another name")
            self.check_room_for_collection()
            path = self._dir.new_folder()
            coll = None
            try:
                coll = Collection.create(path, name, schema, self.seal_bytes, specs, props)
                self._dir.add(name, path)
            except WriteFailed:  # nothing of it may stay on disk
                if coll is not None:
                    coll.close()
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._opened(coll)
            return True

    def check_room_for_collection(self) -> None:
        limit = self.properties.get("database.max.collections")
        if limit is not None and len(self.collections) + len(self.damaged) >= int(limit):
            raise MilvusException(f"exceeded the limit number of collections[dbName="
                                  f"{self.name}][limit={limit}]: drop a collection or raise "
                                  "database.max.collections", code=65535)

    @staticmethod
    def _checked_specs(schema: CollectionSchema, index_params: Any) -> list[IndexSpec]:
        specs = []
        for spec in index_params:
            specs.append(spec.checked(schema))
        return specs

    def drop_collection(self, name: str) -> None:
        check_name("collection", name)
        with self.lock:
            if name in self.aliases:
                raise ParamError(f"cannot drop the collection via alias = {name}: drop "
                                 f"{self.aliases[name]} by its own name")
            coll = self.collections.get(name)
            damaged = self.damaged.get(name)
            if damaged is None and coll is None:
                return  # Milvus: dropping a missing collection succeeds
            held = self._aliases_of(name)
            if held:
                raise MilvusException(f"unable to drop the collection [{name}] because it has "
                                      f"associated aliases {held}, please remove all aliases "
                                      "before dropping the collection")
            self._dir.unlist(name)  # refused: WriteFailed, nothing changed
            if damaged is not None:
                del self.damaged[name]
                self._dir.delete(damaged[0])
                return
            self.residency.release(coll, persist=False)
            coll.close()
            del self.collections[name]
            self._dir.delete(coll.path)

    def has_collection(self, name: str) -> bool:
        check_name("collection", name)
        with self.lock.read():
            name = self.resolve(name)
            return name in self.collections or name in self.damaged

    def list_collections(self) -> list[str]:
        with self.lock.read():
            return sorted([*self.collections, *self.damaged])

    def describe_collection(self, name: str) -> dict:
        with self.lock.read():
            coll = self.get(name)
            s = coll.schema
            return {"collection_name": coll.name, "auto_id": s.auto_id, "num_shards": 1,
                    "description": s.description,
                    "fields": [f.describe(100 + i) for i, f in enumerate(s.fields)],
                    "functions": [], "aliases": self._aliases_of(coll.name),
                    "collection_id": zlib.crc32(coll.name.encode()),
                    "consistency_level": 0, "properties": dict(coll.manifest.properties),
                    "num_partitions": len(coll.partitions),
                    "enable_dynamic_field": s.enable_dynamic_field}

    def row_count(self, name: str, partition: str | None = None) -> int:
        with self.lock.read():
            coll = self.get(name)
            return coll.row_count(self.partition(coll, partition) if partition else None)

    def alter_properties(self, name: str, properties: Any, delete_keys: Any) -> None:
        """Set ``properties`` and remove ``delete_keys`` (saved once)."""
        keys = list(delete_keys or [])
        if not all(isinstance(k, str) for k in keys):
            raise ParamError("property keys must be strings")
        with self.lock:
            coll = self.get(name)
            props = {**coll.manifest.properties, **collection_properties.checked(properties)}
            coll.set_properties({k: v for k, v in props.items() if k not in keys})

    def schema(self, name: str) -> CollectionSchema:
        with self.lock.read():
            return self.get(name).schema

    def output_spec(self, name: str, output_fields: Any) -> _search.OutputSpec:
        with self.lock.read():
            coll = self.get(name)
            return _search.output_spec(coll.schema, self.residency.loaded_fields(coll),
                                       output_fields, include_pk=False)

    def persistent_segments(self, name: str) -> list[dict]:
        with self.lock.read():
            return [{"segment_id": s.id, "partition": s.partition, "num_rows": s.num_rows}
                    for s in self.get(name).sealed]

    # -- writes ---------------------------------------------------------------------------
    def _denied(self, what: str) -> None:
        """Refuse a write or a read when the database's properties deny it."""
        if self.properties.get(f"database.force.deny.{what}", "false").lower() == "true":
            raise MilvusException(f"quota exceeded[reason=database {self.name} is forced to "
                                  f"deny {what}]: alter_database_properties(..., "
                                  f"{{'database.force.deny.{what}': False}}) allows it again",
                                  code=9)

    def write(self, name: str, data: Any, partition: str | None, kind: Kind) -> list:
        """Insert or upsert; returns the written primary keys."""
        with self.lock:
            self._denied("writing")
            coll = self.get(name)
            part = self.partition(coll, partition)
            batch = writes.batch_of(coll, data, kind)
            if batch is None:
                return []
            with self.residency.room_for(coll, part, batch) as room:
                _, changes = coll.write(kind, part, batch)
                self.residency.apply(coll, changes, room)
            return writes.key_list(batch.cols[coll.pk.name])

    def delete(self, name: str, ids: Any, filter: str | None, partition: str | None,
               params: dict | None) -> int:
        with self.lock:
            self._denied("writing")
            coll = self.get(name)
            if ids is not None:
                keys = writes.keys_of(coll, ids)
            else:
                want = {self.partition(coll, partition)} if partition else set(coll.partitions)
                try:
                    keys = writes.matching_keys(coll, self.residency.get(coll.name), filter,
                                                want, params)
                except WorkerLost as e:  # matched again without it (from disk, in part)
                    self.residency.worker_lost(e.worker)
                    keys = writes.matching_keys(coll, self.residency.get(coll.name), filter,
                                                want, params)
            if len(keys) == 0:
                return 0
            part = self.partition(coll, partition) if partition else ""
            with self.residency.room_for(coll, part, None) as room:
                n, changes = coll.write(Kind.DELETE, part, writes.Batch(len(keys), {"pk": keys}))
                self.residency.apply(coll, changes, room)
            return n

    def flush(self, name: str) -> None:
        with self.lock:
            coll = self.get(name)
            self.residency.apply(coll, coll.flush())

    # -- reads ----------------------------------------------------------------------------
    def _find_lost_workers(self) -> None:
        """Ping the Ray workers (a load state is what a client polls to see the cluster's
        health): one found gone has its segments re-placed now, so the state says
        Loading rather than Loaded over a worker that is not there."""
        live = self.workers.live_remote()
        if not live:
            return
        from .cluster import dead_workers

        gone = dead_workers(live)
        if gone:
            self.on_workers_lost(gone)

    def lose_workers(self, names: list[str]) -> None:
        """Ray workers found dead: serve their segments from replicas or re-place them
        (``Residency.worker_lost``). ``on_workers_lost`` is this, or, for databases that
        share workers, what tells every one of them (``databases.py``)."""
        with self.lock:
            for name in names:
                self.residency.worker_lost(name)

    def _reading(self, read: Any) -> Any:
        """A read under the shared lock; if a Ray worker is found gone under it, the lost
        segments are served from replicas or re-placed (under the lock alone) and the
        read is tried once more: it then answers from the replicas, or 101 while the
        segments load again, never a result that misses them."""
        for attempt in (0, 1):
            try:
                with self.lock.read():
                    self._denied("reading")
                    return read()
            except WorkerLost as e:
                if attempt:
                    raise
                self.on_workers_lost([e.worker])

    def search(self, name: str, req: reads.SearchRequest) -> list[list[dict]]:
        return self._reading(lambda: reads.search(self.residency, self.get(name), req))

    def hybrid_search(self, name: str, requests: list, ranker: Any, limit: int,
                      output_fields: Any, partition_names: list[str] | None,
                      options: dict) -> list[list[dict]]:
        return self._reading(lambda: hybrid.hybrid_search(
            self.residency, self.get(name), requests, ranker, limit, output_fields,
            partition_names, options))

    def query(self, name: str, filter: str, output_fields: Any, ids: Any,
              partition_names: list[str] | None, options: dict) -> list[dict]:
        return self._reading(lambda: reads.query(self.residency, self.get(name), filter,
                                                 output_fields, ids, partition_names, options))

    # -- indexes --------------------------------------------------------------------------
    def create_index(self, name: str, index_params: Any) -> None:
        with self.lock:
            coll = self.get(name)
            added = []
            for spec in self._checked_specs(coll.schema, index_params):
                covers = scalar.covers(spec.field_name, spec.params)
                same = next((d for d in coll.manifest.indexes
                             if scalar.covers(d["field_name"], d["params"]) == covers), None)
                if same is not None:
                    if IndexSpec.from_dict(same) == spec:
                        continue
                    raise MilvusException(
                        f"at most one distinct index is allowed per field: {spec.field_name} "
                        f"already has index {same['index_name']} ({same['index_type']}); "
                        "drop it first")
                if any(scalar.covers(s.field_name, s.params) == covers for s in added):
                    raise ParamError(f"two indexes in one call cover {spec.field_name} "
                                     f"{spec.params.get('json_path', '')}: keep one")
                if coll.manifest.index(spec.index_name) is not None or \
                        any(s.index_name == spec.index_name for s in added):
                    raise MilvusException(f"index name {spec.index_name} is already used by "
                                          "another field: pick another index_name")
                added.append(spec)
            if not added:
                return
            self._check_layout(coll, added)
            with self.residency.stage_indexes(coll, [s.to_dict() for s in added]) as staged:
                changes = coll.add_indexes(added)
                staged.commit()
            self.residency.apply(coll, changes)

    def _check_layout(self, coll: Collection, added: list[IndexSpec]) -> None:
        """Rows have one order: at most one index with a layout per collection, built while
        the collection is not resident (its segments are rewritten)."""
        def lays_out(spec: IndexSpec) -> bool:
            f = coll.schema.field(spec.field_name)
            if f is None or not f.is_vector:
                return False
            etype, _ = registry.resolve(spec.index_type, spec.params, coll.row_count(),
                                        spec.metric_type, registry.kind_of(f.dtype))
            return bool(registry.get(etype).layout_suffix)

        laid = [s for s in added if lays_out(s)]
        if not laid:
            return
        if coll.layout_index() is not None or len(laid) > 1:
            raise ParamError("a collection has at most one IVF index: its rows are stored in "
                             "that index's list order")
        if self.residency.get(coll.name) is not None:
            raise MilvusException(
                f"{laid[0].index_type} cannot be built while the collection is loaded (its "
                "segments are rewritten in list order): release it first, then create the "
                "index")

    def list_indexes(self, name: str, field_name: str) -> list[str]:
        with self.lock.read():
            return [d["index_name"] for d in self.get(name).manifest.indexes
                    if not field_name or d["field_name"] == field_name]

    def describe_index(self, name: str, index_name: str) -> dict:
        check_index_lookup(index_name)
        with self.lock.read():
            coll = self.get(name)
            d = coll.manifest.index(index_name)
            if d is None:
                raise _index_not_found(index_name)
            rows = coll.row_count()
            out = {**d["params"], "index_type": d["index_type"],
                   "field_name": d["field_name"], "index_name": d["index_name"],
                   "total_rows": rows, "indexed_rows": rows, "pending_index_rows": 0,
                   "state": "Finished"}
            if d["metric_type"]:
                out["metric_type"] = d["metric_type"]
            return out

    def drop_index(self, name: str, index_name: str) -> None:
        check_index_lookup(index_name)
        with self.lock:
            coll = self.get(name)
            if coll.manifest.index(index_name) is None:
                raise _index_not_found(index_name)
            if self.residency.get(coll.name) is not None:
                raise IndexCannotBeDropped()
            coll.drop_index(index_name)

    # -- load and release -----------------------------------------------------------------
    def load(self, name: str, load_fields: Any, skip_dynamic: bool, replica_number: int,
             refresh: bool, _async: bool) -> None:
        with self.lock:
            coll = self.get(name)
            if refresh and self.residency.get(coll.name) is not None:
                self.residency.refresh(coll)
                return
            res = self.residency.load(coll, load_fields, skip_dynamic, replica_number, _async)
        if not _async:
            self.residency.finish(res)

    def refresh_load(self, name: str) -> None:
        with self.lock:
            self.residency.refresh(self.get(name))

    def load_partitions(self, name: str, partitions: list[str], load_fields: Any,
                        skip_dynamic: bool, replica_number: Any) -> None:
        partitions = check_names("partition", partitions)
        with self.lock:
            res = self.residency.load_partitions(self.get(name), partitions, load_fields,
                                                 skip_dynamic, replica_number)
        self.residency.finish(res)

    def release(self, name: str) -> None:
        with self.lock:
            self.residency.release(self.get(name))

    def release_partitions(self, name: str, partitions: list[str]) -> None:
        partitions = check_names("partition", partitions)
        with self.lock:
            self.residency.release_partitions(self.get(name), partitions)

    def load_state(self, name: str, partitions: list[str]) -> dict:
        """The load state of a collection, or the least advanced of some partitions (what
        Milvus's GetLoadState answers for several)."""
        partitions = check_names("partition", partitions) if partitions else [""]
        self._find_lost_workers()
        with self.lock.read():  # polled often: it must not wait behind searches
            name = self.resolve(name)
            coll = self.collections.get(name)
            if coll is None:
                self._refuse_damaged(name)
                return {"state": LoadState.NotExist}
            states = [self.residency.state(coll, p) for p in partitions]
            failed = self.residency.failed(coll)
        if failed:  # a background load failed: forget it, keeping its error (a write)
            with self.lock:
                self.residency.forget_if_failed(coll)
        return min(states, key=lambda st: st["state"])

    def take_load_error(self, name: str) -> MilvusException | None:
        with self.lock:
            return self.residency.take_error(self.resolve(name))

    def add_field(self, name: str, f: Any) -> None:
        """``add_collection_field``: see ``Collection.add_field``."""
        with self.lock:
            coll = self.get(name)
            self.residency.apply(coll, coll.add_field(f))

    def rename_collection(self, old: str, new: str) -> None:
        """Rename within this database (databases.py moves one to another database)."""
        check_name("collection", new)
        with self.lock:
            if old in self.aliases:
                raise ParamError(f"{old} is an alias: rename the collection by its own name "
                                 f"({self.aliases[old]})")
            coll = self.get(old)
            if new in self.collections or new in self.damaged or new in self.aliases:
                raise ParamError(f"duplicated new collection name {new} with other collection "
                                 "name or alias: pick another name")
            loaded = self.residency.get(coll.name) is not None
            aliases = {a: (new if c == coll.name else c) for a, c in self.aliases.items()}
            self._dir.rename(coll.name, new, aliases)  # refused: nothing changed
            self.residency.release(coll, persist=False)  # owners are tagged by name
            del self.collections[coll.name]
            coll.rename(new)
            self.collections[new] = coll
            self.aliases = aliases
            if loaded:
                self.residency.load_intended(coll)

    def truncate_collection(self, name: str) -> None:
        """Remove every row; the schema, indexes (to be trained again), partitions and load
        state stay. The empty collection is written before it replaces the old one."""
        with self.lock:
            coll = self.get(name)
            path = self._dir.new_folder()
            try:
                fresh = Collection.create(path, coll.name, coll.schema, self.seal_bytes,
                                          like=coll.manifest)
                self._dir.replace(coll.name, path)
            except WriteFailed:
                shutil.rmtree(path, ignore_errors=True)
                raise
            self.residency.release(coll, persist=False)
            coll.close()
            self._dir.delete(coll.path)
            self._opened(fresh)
            self.residency.load_intended(fresh)

    # -- compaction -----------------------------------------------------------------------
    def compact(self, name: str, clustering: bool, target_mb: int | None) -> int:
        """Compact now (merge small segments, purge deleted rows; ``target_mb`` caps a
        merged segment); returns the job id that get_compaction_state reports as
        Completed."""
        if clustering:
            raise ParamError("clustering compaction is not supported by Hotset: compact "
                             "without is_clustering")
        if target_mb is not None and (isinstance(target_mb, bool) or
                                      not isinstance(target_mb, int) or target_mb <= 0):
            raise ParamError(f"target_size must be a positive integer (MB), got {target_mb!r}")
        with self.lock:
            coll = self.get(name)
            self.residency.apply(coll, coll.compact(None if target_mb is None
                                                    else target_mb << 20))
            self.compactions += 1
            return self.compactions

    def compaction_state(self, job_id: Any) -> str:
        with self.lock.read():
            if isinstance(job_id, int) and not isinstance(job_id, bool) and \
                    0 < job_id <= self.compactions:
                return "Completed"
            return "UndefiedState"  # Milvus's spelling of the unknown state

    # -- partitions -----------------------------------------------------------------------
    def create_partition(self, name: str, partition: str) -> None:
        with self.lock:
            coll = self.get(name)
            check_name("partition", partition)
            _no_partitions_by_hand(coll, create=True)
            if partition in coll.partitions:
                return
            coll.add_partition(partition)
            self.residency.partition_added(coll, partition)

    def list_partitions(self, name: str) -> list[str]:
        with self.lock.read():
            return self.get(name).partitions

    def has_partition(self, name: str, partition: str) -> bool:
        check_name("partition", partition)
        with self.lock.read():
            return partition in self.get(name).partitions

    def drop_partition(self, name: str, partition: str) -> None:
        check_name("partition", partition)
        with self.lock:
            coll = self.get(name)
            if partition == DEFAULT_PARTITION:
                raise ParamError("default partition cannot be deleted")
            if partition not in coll.partitions:
                return
            res = self.residency.get(coll.name)
            if res is not None and partition in res.partitions:
                raise MilvusException(f"partition cannot be dropped, partition is loaded, "
                                      f"please release it first[partition={partition}]")
            self.residency.apply(coll, coll.drop_partition(partition))

    def memory_info(self, name: str | None) -> dict:
        if name is None:
            return self.workers.memory_info()
        check_name("collection", name)
        return self.workers.collection_info(self.resolve(name))

    # -- aliases --------------------------------------------------------------------------
    def _aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, c in self.aliases.items() if c == name)

    def create_alias(self, name: str, alias: str) -> None:
        check_name("alias", alias)
        with self.lock:
            if name in self.aliases:
                raise ParamError(f"{name} is an alias: an alias names a collection by the "
                                 "collection's own name")
            coll = self.get(name)
            if alias in self.collections or alias in self.damaged:
                raise AliasConflict(f"alias and collection name conflict: {alias} is a "
                                    "collection; pick another alias")
            held = self.aliases.get(alias)
            if held == coll.name:
                return
            if held is not None:
                raise AliasConflict(f"alias exists and already aliased to another collection, "
                                    f"alias: {alias}, collection: {held}: drop or alter it",
                                    code=1602)
            self._set_aliases({**self.aliases, alias: coll.name}, "The alias was not created")

    def alter_alias(self, name: str, alias: str) -> None:
        check_name("alias", alias)
        with self.lock:
            if alias not in self.aliases:
                raise AliasNotFound(alias)
            if name in self.aliases:
                raise ParamError(f"{name} is an alias: an alias names a collection by the "
                                 "collection's own name")
            coll = self.get(name)
            self._set_aliases({**self.aliases, alias: coll.name}, "The alias was not altered")

    def drop_alias(self, alias: str) -> None:
        check_name("alias", alias)
        with self.lock:
            if alias in self.aliases:  # Milvus: dropping a missing alias succeeds
                rest = {a: c for a, c in self.aliases.items() if a != alias}
                self._set_aliases(rest, "The alias was not dropped")

    def describe_alias(self, alias: str) -> dict:
        check_name("alias", alias)
        with self.lock.read():
            if alias not in self.aliases:
                raise AliasNotFound(alias)
            return {"alias": alias, "collection_name": self.aliases[alias], "db_name": self.name}

    def list_aliases(self, name: str) -> dict:
        with self.lock.read():
            if not name:
                return {"aliases": sorted(self.aliases), "collection_name": "",
                        "db_name": self.name}
            coll = self.get(name)
            return {"aliases": self._aliases_of(coll.name), "collection_name": coll.name,
                    "db_name": self.name}

    def _set_aliases(self, aliases: dict[str, str], undone: str) -> None:
        self._dir.set_aliases(aliases, undone)
        self.aliases = aliases

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.residency.close()
            for name, coll in self.collections.items():
                try:
                    coll.flush()
                except WriteFailed as e:  # the rows are in the WAL: replayed at the next open
                    warnings.warn(f"collection {name}: not sealed at close, its rows stay in "
                                  f"the write-ahead log: {e.message}", RuntimeWarning,
                                  stacklevel=4)
                coll.close()
            self.closed = True
            self._dir.close()

"""MilvusClient-compatible facade: argument names, defaults and return shapes of pymilvus's
``MilvusClient``, over an embedded data directory. It normalises arguments and shapes
results only; behaviour and errors are decided in the database (database.py) and the
rooms it hands work to.
"""
from __future__ import annotations

import inspect
from typing import Any

from .databases import HEARTBEAT_S, Databases
from .device import resolve_device
from .errors import DataError, ParamError
from .hybrid import OPTIONS as HYBRID_OPTIONS
from .index import IndexParams
from .keywords import CONSISTENCY, checked
from .reads import QUERY_OPTIONS, SEARCH_OPTIONS, SearchRequest
from .schema import DYNAMIC_FIELD, CollectionSchema, DataType
from .search import OutputSpec
from .storage.wal import Kind

DEFAULT_SEAL_BYTES = 512 << 20


class MilvusClient:
    """``MilvusClient(uri="./data", *, device="auto", memory_limit=None)``.

    ``uri`` is a data directory (created if missing). ``device`` is ``"auto"``, ``"cpu"`` or
    ``"cuda:N"``; ``memory_limit`` caps the bytes the device allocator hands out.
    ``devices`` (instead of ``device``) serves from several in-process workers, one per
    entry (``["cuda:0", "cuda:1"]``, or ``["cpu", "cpu"]``): sealed segments are placed
    across them by bytes, each with ``memory_limit`` of its own (``engine/workers.py``).
    ``ray_workers=N`` adds N Ray actors as workers (``engine/cluster.py``; the cluster at
    ``ray_address``, or one this process starts): they hold the sealed segments, read from
    ``uri`` (which every node must see at that path), while this process coordinates.
    They are pinged every ``heartbeat_s`` seconds (5 by default): one that died has its segments served
    from replicas or read again onto the others without waiting for a call to find it.
    ``verify_checksums=False`` skips checking segment files against their checksums when
    they are read (a benchmark's comparison; damage then goes unnoticed).
    """

    def __init__(self, uri: str = "./data", user: str = "", password: str = "",
                 db_name: str = "", token: str = "", timeout: float | None = None, *,
                 device: str = "auto", devices: list[str] | None = None,
                 ray_workers: int = 0, ray_address: str | None = None,
                 heartbeat_s: float | None = None, memory_limit: int | None = None,
                 segment_max_bytes: int = DEFAULT_SEAL_BYTES, verify_checksums: bool = True,
                 **kwargs: Any) -> None:
        if user or password or token:
            raise ParamError("an embedded client has no users: user, password and token "
                             "apply to a server (`python -m engine serve --token ...`, reached "
                             "with pymilvus); leave them out here")
        if str(uri).startswith(("http://", "https://", "tcp://", "grpc://")):
            raise ParamError(
                f"uri {uri!r} is a server address; engine.MilvusClient opens a data directory "
                "(e.g. uri='./data'). To serve one over the network run "
                "`python -m engine serve --data ./data` and connect with pymilvus")
        if devices is not None:
            if isinstance(devices, str) or not list(devices):
                raise ParamError(f"devices must be a non-empty list of devices, got "
                                 f"{devices!r}: e.g. devices=['cuda:0', 'cuda:1']")
            resolved = [resolve_device(d) for d in devices]
        else:
            resolved = [resolve_device(device)]
        self.device = resolved[0]
        remote = None
        if not ray_workers:
            given = [k for k, v in (("ray_address", ray_address), ("heartbeat_s", heartbeat_s))
                     if v is not None]
            if given:
                raise ParamError(f"{' and '.join(given)} apply to Ray workers only: pass "
                                 "ray_workers=N with them, or leave them out")
        else:
            if isinstance(ray_workers, bool) or not isinstance(ray_workers, int) \
                    or ray_workers < 0:
                raise ParamError(f"ray_workers must be a number of workers, got {ray_workers!r}")
            from .cluster import ray_workers as start

            heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
            if isinstance(heartbeat_s, bool) or not isinstance(heartbeat_s, (int, float)) \
                    or not 0 < heartbeat_s < float("inf"):
                raise ParamError(f"heartbeat_s must be a positive number of seconds, got "
                                 f"{heartbeat_s!r}")
            remote = start(ray_workers, self.device, memory_limit, ray_address)
        self._dbs = Databases(uri, resolved, memory_limit, segment_max_bytes,
                              verify_checksums, remote, heartbeat_s or HEARTBEAT_S)
        try:
            self._db = self._dbs.get(db_name)
        except BaseException:
            self._dbs.close()
            raise
        self.allocator = self._dbs.default.allocator
        self._owner = True  # closing this client closes the data directory

    # -- databases ------------------------------------------------------------------------
    def use_database(self, db_name: str, **kwargs: Any) -> None:
        """Later calls of this client act in database ``db_name`` (pymilvus 3's name)."""
        self._db = self._dbs.get(db_name)

    using_database = use_database  # pymilvus 2's name

    def in_database(self, db_name: str | None) -> "MilvusClient":
        """A client for database ``db_name`` over the same data directory (what a server
        hands each request); closing it closes nothing."""
        view = object.__new__(MilvusClient)
        view.__dict__.update(self.__dict__)
        view._db, view._owner = self._dbs.get(db_name), False
        return view

    @property
    def db_name(self) -> str:
        """The database this client acts in."""
        return self._db.name

    def create_database(self, db_name: str, properties: dict | None = None,
                        timeout: float | None = None, **kwargs: Any) -> None:
        self._dbs.create(db_name, properties)

    def drop_database(self, db_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        self._dbs.drop(db_name)

    def list_databases(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        return self._dbs.list()

    def describe_database(self, db_name: str, timeout: float | None = None,
                          **kwargs: Any) -> dict:
        return self._dbs.describe(db_name)

    def alter_database_properties(self, db_name: str, properties: dict,
                                  timeout: float | None = None, **kwargs: Any) -> None:
        self._dbs.alter(db_name, properties, None)

    def drop_database_properties(self, db_name: str, property_keys: list[str],
                                 timeout: float | None = None, **kwargs: Any) -> None:
        self._dbs.alter(db_name, None, property_keys)

    # -- schema and collections ---------------------------------------------------------
    @staticmethod
    def create_schema(auto_id: bool = False, enable_dynamic_field: bool = False,
                      **kwargs: Any) -> CollectionSchema:
        return CollectionSchema(auto_id=auto_id, enable_dynamic_field=enable_dynamic_field,
                                description=kwargs.get("description", ""))

    @staticmethod
    def prepare_index_params(field_name: str = "", **kwargs: Any) -> IndexParams:
        params = IndexParams()
        if field_name:
            params.add_index(field_name, **kwargs)
        return params

    def create_collection(self, collection_name: str, dimension: int | None = None,
                          primary_field_name: str = "id", id_type: str = "int",
                          vector_field_name: str = "vector", metric_type: str = "COSINE",
                          auto_id: bool = False, timeout: float | None = None,
                          schema: CollectionSchema | None = None,
                          index_params: IndexParams | None = None, **kwargs: Any) -> None:
        quick = schema is None
        if quick:  # pymilvus's quick form: pk + one vector field, AUTOINDEX, loaded
            if dimension is None:
                raise ParamError("create_collection needs dimension= (quick form) or schema=")
            schema = CollectionSchema(auto_id=auto_id, enable_dynamic_field=kwargs.get(
                "enable_dynamic_field", True))
            if str(id_type).lower() in ("int", "int64"):
                schema.add_field(primary_field_name, DataType.INT64, is_primary=True)
            elif str(id_type).lower() in ("str", "string", "varchar"):
                schema.add_field(primary_field_name, DataType.VARCHAR, is_primary=True,
                                 max_length=int(kwargs.get("max_length", 65535)))
            else:
                raise ParamError(f"id_type {id_type!r} is invalid; use 'int' or 'string'")
            schema.add_field(vector_field_name, DataType.FLOAT_VECTOR, dim=int(dimension))
            index_params = IndexParams()
            index_params.add_index(vector_field_name, "AUTOINDEX", metric_type=metric_type)
        elif not isinstance(schema, CollectionSchema):
            raise ParamError("schema must come from MilvusClient.create_schema()")
        created = self._db.create_collection(collection_name, schema, index_params,
                                             kwargs.get("properties"))
        if created and (quick or index_params is not None):
            self.load_collection(collection_name)

    def add_collection_field(self, collection_name: str, field_name: str, data_type: Any,
                             desc: str = "", timeout: float | None = None,
                             **kwargs: Any) -> None:
        """Add a nullable field (``nullable=True``, optionally ``default_value=``) to an
        existing collection; rows already stored read it as the default or null."""
        s = CollectionSchema()
        s.add_field(field_name, data_type, description=desc, **kwargs)
        self._db.add_field(collection_name, s.fields[0])

    def alter_collection_properties(self, collection_name: str, properties: dict,
                                    timeout: float | None = None, **kwargs: Any) -> None:
        self._db.alter_properties(collection_name, properties, None)

    def drop_collection_properties(self, collection_name: str, property_keys: list[str],
                                   timeout: float | None = None, **kwargs: Any) -> None:
        self._db.alter_properties(collection_name, None, property_keys)

    def drop_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        self._db.drop_collection(collection_name)

    def rename_collection(self, old_name: str, new_name: str, target_db: str | None = "",
                          timeout: float | None = None, **kwargs: Any) -> None:
        self._dbs.move(self._db, old_name, target_db or self._db.name, new_name)

    def truncate_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> None:
        self._db.truncate_collection(collection_name)

    def has_collection(self, collection_name: str, timeout: float | None = None,
                       **kwargs: Any) -> bool:
        return self._db.has_collection(collection_name)

    def list_collections(self, **kwargs: Any) -> list[str]:
        return self._db.list_collections()

    def describe_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> dict:
        return self._db.describe_collection(collection_name)

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict:
        return {"row_count": self._db.row_count(collection_name)}

    # -- writes ---------------------------------------------------------------------------
    def insert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict:
        ids = self._db.write(collection_name, data, partition_name, Kind.INSERT)
        return {"insert_count": len(ids), "ids": ids}

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict:
        ids = self._db.write(collection_name, data, partition_name, Kind.UPSERT)
        return {"upsert_count": len(ids), "ids": ids}

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
               filter: str | None = None, partition_name: str | None = None,
               **kwargs: Any) -> dict:
        ids = kwargs.pop("pks", ids)
        if ids is not None and filter:
            raise ParamError("delete takes ids or filter, not both")
        if ids is None and not filter:
            raise ParamError("delete needs ids=[...] or filter='...'")
        n = self._db.delete(collection_name, ids, filter, partition_name,
                            kwargs.get("filter_params"))
        return {"delete_count": n}

    def flush(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        self._db.flush(collection_name)

    # -- reads ----------------------------------------------------------------------------
    def search(self, collection_name: str, data: Any, filter: str = "", limit: int = 10,
               output_fields: list[str] | None = None, search_params: dict | None = None,
               timeout: float | None = None, partition_names: list[str] | None = None,
               anns_field: str | None = None, **kwargs: Any) -> list[list[dict]]:
        req = SearchRequest(data, filter, limit, output_fields, search_params,
                            partition_names, anns_field, kwargs)
        return self._db.search(collection_name, req)

    def hybrid_search(self, collection_name: str, reqs: list, ranker: Any, limit: int = 10,
                      output_fields: list[str] | None = None, timeout: float | None = None,
                      partition_names: list[str] | None = None, **kwargs: Any
                      ) -> list[list[dict]]:
        """pymilvus's ``hybrid_search``: ``reqs`` are ``AnnSearchRequest``s (engine's or
        pymilvus's), ``ranker`` an ``RRFRanker`` or ``WeightedRanker``."""
        return self._db.hybrid_search(collection_name, reqs, ranker, limit, output_fields,
                                      partition_names, kwargs)

    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,
              timeout: float | None = None, ids: Any = None,
              partition_names: list[str] | None = None, **kwargs: Any) -> list[dict]:
        return self._db.query(collection_name, filter, output_fields, ids, partition_names,
                              kwargs)

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            timeout: float | None = None, partition_names: list[str] | None = None,
            **kwargs: Any) -> list[dict]:
        return self.query(collection_name, "", output_fields, ids=ids,
                          partition_names=partition_names)

    # -- indexes ---------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: IndexParams,
                     timeout: float | None = None, **kwargs: Any) -> None:
        self._db.create_index(collection_name, index_params)

    def list_indexes(self, collection_name: str, field_name: str = "", **kwargs: Any) -> list[str]:
        return self._db.list_indexes(collection_name, field_name)

    def describe_index(self, collection_name: str, index_name: str,
                       timeout: float | None = None, **kwargs: Any) -> dict:
        return self._db.describe_index(collection_name, index_name)

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        self._db.drop_index(collection_name, index_name)

    # -- load and release ---------------------------------------------------------------
    def load_collection(self, collection_name: str, timeout: float | None = None,
                        replica_number: int = 1, load_fields: list[str] | None = None,
                        skip_load_dynamic_field: bool = False, _async: bool = False,
                        refresh: bool = False, **kwargs: Any) -> None:
        self._db.load(collection_name, load_fields, bool(skip_load_dynamic_field),
                      replica_number, refresh, _async)

    def release_collection(self, collection_name: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        self._db.release(collection_name)

    def refresh_load(self, collection_name: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        self._db.refresh_load(collection_name)

    def get_load_state(self, collection_name: str, partition_name: str = "",
                       timeout: float | None = None, **kwargs: Any) -> dict:
        """As pymilvus; Hotset's ``partition_names=[...]`` gives the least advanced state of
        those partitions (what Milvus's REST and gRPC GetLoadState answer)."""
        names = kwargs.get("partition_names") or ([partition_name] if partition_name else [])
        return self._db.load_state(collection_name, names)

    def take_load_error(self, collection_name: str):
        """The error of the last background load of a collection that failed, once."""
        return self._db.take_load_error(collection_name)

    # -- partitions -----------------------------------------------------------------------
    def create_partition(self, collection_name: str, partition_name: str,
                         timeout: float | None = None, **kwargs: Any) -> None:
        self._db.create_partition(collection_name, partition_name)

    def list_partitions(self, collection_name: str, **kwargs: Any) -> list[str]:
        return self._db.list_partitions(collection_name)

    def has_partition(self, collection_name: str, partition_name: str, **kwargs: Any) -> bool:
        return self._db.has_partition(collection_name, partition_name)

    def get_partition_stats(self, collection_name: str, partition_name: str,
                            timeout: float | None = None, **kwargs: Any) -> dict:
        return {"row_count": self._db.row_count(collection_name, partition_name)}

    def drop_partition(self, collection_name: str, partition_name: str,
                       timeout: float | None = None, **kwargs: Any) -> None:
        self._db.drop_partition(collection_name, partition_name)

    def load_partitions(self, collection_name: str, partition_names: list[str],
                        timeout: float | None = None, **kwargs: Any) -> None:
        self._db.load_partitions(collection_name, partition_names, kwargs.get("load_fields"),
                                 bool(kwargs.get("skip_load_dynamic_field", False)),
                                 kwargs.get("replica_number", 1))

    def release_partitions(self, collection_name: str, partition_names: list[str],
                           timeout: float | None = None, **kwargs: Any) -> None:
        self._db.release_partitions(collection_name, partition_names)

    # -- compaction -----------------------------------------------------------------------
    def compact(self, collection_name: str, is_clustering: bool = False, is_l0: bool = False,
                target_size: int | None = None, timeout: float | None = None,
                **kwargs: Any) -> int:
        """Merge small sealed segments and purge deleted rows now; ``target_size`` (MB)
        caps a merged segment. Returns a job id (the compaction has completed)."""
        return self._db.compact(collection_name, bool(is_clustering), target_size)

    def get_compaction_state(self, job_id: int, timeout: float | None = None,
                             **kwargs: Any) -> str:
        return self._db.compaction_state(job_id)

    # -- aliases ----------------------------------------------------------------------------
    def create_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        self._db.create_alias(collection_name, alias)

    def alter_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                    **kwargs: Any) -> None:
        self._db.alter_alias(collection_name, alias)

    def drop_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        self._db.drop_alias(alias)

    def describe_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> dict:
        return self._db.describe_alias(alias)

    def list_aliases(self, collection_name: str = "", timeout: float | None = None,
                     **kwargs: Any) -> dict:
        return self._db.list_aliases(collection_name)

    # -- Hotset's own ---------------------------------------------------------------------
    def memory_info(self, collection_name: str | None = None) -> dict:
        return self._db.memory_info(collection_name)

    def collection_schema(self, collection_name: str) -> CollectionSchema:
        """The collection's schema object (``describe_collection`` gives Milvus's dict)."""
        return self._db.schema(collection_name)

    def output_spec(self, collection_name: str, output_fields: list[str] | None) -> OutputSpec:
        """The schema fields and dynamic keys a search or query with ``output_fields``
        returns, by the same rules (limited to the loaded fields while loaded)."""
        return self._db.output_spec(collection_name, output_fields)

    def persistent_segments(self, collection_name: str) -> list[dict]:
        """The sealed segments on disk: ``[{"segment_id", "partition", "num_rows"}]``."""
        return self._db.persistent_segments(collection_name)

    def close(self) -> None:
        if self._owner:
            self._dbs.close()

    def __enter__(self) -> "MilvusClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# What each method reads through ``**kwargs`` besides its named parameters; any other
# keyword is refused (keywords.checked). prepare_index_params and add_collection_field
# hand theirs to add_index and add_field, which check them.
READS: dict[str, tuple[str, ...]] = {
    "create_schema": ("description",),
    "create_collection": ("enable_dynamic_field", "max_length", "properties", *CONSISTENCY),
    "delete": ("pks", "filter_params"),
    "search": (*SEARCH_OPTIONS, *CONSISTENCY),
    "hybrid_search": (*HYBRID_OPTIONS, *CONSISTENCY),
    "query": (*QUERY_OPTIONS, *CONSISTENCY),
    "get": CONSISTENCY,
    "get_load_state": ("partition_names",),
    "load_partitions": ("load_fields", "skip_load_dynamic_field", "replica_number"),
}
FORWARDED = ("prepare_index_params", "add_collection_field")


def _check_keywords(cls: type) -> None:
    for name, attr in list(vars(cls).items()):
        method = attr.__func__ if isinstance(attr, staticmethod) else attr
        if name in FORWARDED or not callable(method) or (
                name.startswith("_") and name != "__init__"):
            continue
        if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(method).parameters.values()):
            wrapped = checked(method, READS.get(name, ()))
            setattr(cls, name, staticmethod(wrapped) if isinstance(attr, staticmethod)
                    else wrapped)


_check_keywords(MilvusClient)

__all__ = ["MilvusClient", "DataError", "DYNAMIC_FIELD"]

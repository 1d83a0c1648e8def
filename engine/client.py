"""MilvusClient-compatible facade: argument names, defaults and return shapes of pymilvus's
``MilvusClient``, over an embedded data directory. Behaviour and errors are decided in the
engine modules; this file checks arguments, takes the lock and translates.
"""
from __future__ import annotations

import shutil
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

import kernels

from .allocator import DeviceAllocator
from .catalog import DataDir
from .collection import DEFAULT_PARTITION, Collection, read_manifest
from .columns import REPLACED_KEYS, Batch, first_duplicate, to_batch
from .device import resolve_device
from .errors import (CollectionNotFound, CollectionNotLoaded, DataError, FieldNotFound,
                     IndexCannotBeDropped, IndexNotFound, InsufficientMemory,
                     MilvusException, ParamError,
                     PartitionNotFound, PartitionNotLoaded, StorageError, WriteFailed)
from .expr import compile_filter
from .index import IndexParams, IndexSpec, ivf
from .loader import Loader, LoadState, Resident
from .locks import RWLock
from .names import check_name, check_names
from .resident import loaded_names
from .schema import DYNAMIC_FIELD, CollectionSchema, DataType
from . import search as _search
from .storage.wal import Kind

DEFAULT_SEAL_BYTES = 512 << 20
MAX_NQ = 16384


# pymilvus search keywords for features Hotset does not have: refused, never ignored.
UNSUPPORTED_SEARCH = ("group_by_field", "group_by_fields", "group_size", "strict_group_size",
                       "ranker", "search_aggregation", "order_by_fields")


def _refuse_unsupported(kwargs: dict) -> None:
    for name in UNSUPPORTED_SEARCH:
        if kwargs.get(name) not in (None, [], ""):
            hint = (" (to group, search with a larger limit and group the hits)"
                    if name.startswith(("group", "strict")) else "")
            raise ParamError(f"{name} is not supported by Hotset's search: leave it out{hint}")


def _round_decimal(value: Any) -> int:
    """pymilvus's round_decimal: -1 (the default) keeps distances as they are, 0..6 rounds
    them to that many decimals."""
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 6:
        raise ParamError(f"round_decimal must be an integer from -1 (no rounding) to 6, "
                         f"got {value!r}")
    return value


def _offset(value: Any) -> int:
    """pymilvus's offset: a non-negative integer (None or 0: from the first hit)."""
    value = value or 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParamError(f"offset must be a non-negative integer, got {value!r}")
    return int(value)


class MilvusClient:
    """``MilvusClient(uri="./data", *, device="auto", memory_limit=None)``.

    ``uri`` is a data directory (created if missing). ``device`` is ``"auto"``, ``"cpu"`` or
    ``"cuda:N"``; ``memory_limit`` caps the bytes the device allocator hands out.
    ``verify_checksums=False`` skips checking segment files against their checksums when
    they are read (a benchmark's comparison; damage then goes unnoticed).
    """

    def __init__(self, uri: str = "./data", user: str = "", password: str = "",
                 db_name: str = "", token: str = "", timeout: float | None = None, *,
                 device: str = "auto", memory_limit: int | None = None,
                 segment_max_bytes: int = DEFAULT_SEAL_BYTES, verify_checksums: bool = True,
                 **kwargs: Any) -> None:
        if str(uri).startswith(("http://", "https://", "tcp://", "grpc://")):
            raise ParamError(
                f"uri {uri!r} is a server address; engine.MilvusClient opens a data directory "
                "(e.g. uri='./data'). To serve one over the network run "
                "`python -m engine serve --data ./data` and connect with pymilvus")
        self._lock = RWLock()
        self.device = resolve_device(device)
        self._dir = DataDir(uri)
        try:
            self._open(memory_limit, segment_max_bytes, verify_checksums)
        except BaseException:  # the directory must not stay locked by a client never made
            self._dir.close()
            raise

    def _open(self, memory_limit: int | None, segment_max_bytes: int,
              verify_checksums: bool) -> None:
        self.allocator = DeviceAllocator(self.device, memory_limit)
        self._loader = Loader(self.allocator, self._lock)
        self._seal_bytes = int(segment_max_bytes)
        self._colls: dict[str, Collection] = {}
        self._damaged: dict[str, tuple[Path, Exception]] = {}  # could not be opened
        self._resident: dict[str, Resident] = {}
        self._load_errors: dict[str, MilvusException] = {}
        self._closed = False
        self._verify = bool(verify_checksums)
        for name, path in self._dir.names().items():
            try:
                self._colls[name] = Collection(path, read_manifest(path), self._seal_bytes)
            except Exception as e:  # one damaged collection must not make the others unusable
                self._damaged[name] = (path, e)
            else:
                self._colls[name].verify = self._verify
        for coll in self._colls.values():  # restore persisted load intent (rule 9)
            intent = coll.manifest["load"]
            if intent["loaded"]:
                try:
                    self._start_load(coll, intent["load_fields"], intent["skip_dynamic"],
                                     intent.get("partitions"), _async=True)
                except MilvusException as e:  # does not fit (1400): NotLoad, error kept
                    self._load_errors[coll.name] = e

    # -- helpers ------------------------------------------------------------------------
    def _coll(self, name: str) -> Collection:
        if self._closed:
            raise MilvusException("client is closed: create a new MilvusClient")
        check_name("collection", name)
        coll = self._colls.get(name)
        if coll is None:
            self._refuse_damaged(name)
            raise CollectionNotFound(name)
        return coll

    def _refuse_damaged(self, name: str) -> None:
        """Every call on a collection whose files could not be read says so (drop works)."""
        if name in self._damaged:
            path, cause = self._damaged[name]
            raise StorageError(name, "the files", path, cause,
                               "It cannot be used until it is repaired; the others work.")

    def _loaded(self, name: str) -> Resident:
        coll = self._coll(name)
        res = self._resident.get(name)
        if res is not None and res.state == LoadState.Loading:
            raise CollectionNotLoaded(coll.name, loading=res.progress)
        if res is None or res.state != LoadState.Loaded:
            raise CollectionNotLoaded(coll.name)
        return res

    def _partition(self, coll: Collection, name: str | None) -> str:
        part = check_name("partition", name) if name else DEFAULT_PARTITION
        if part not in coll.partitions:
            raise PartitionNotFound(part)
        return part

    def _searched_partitions(self, res: Resident, names: list[str] | None) -> set[str]:
        if not names:
            return set(res.partitions)
        names = check_names("partition", names)
        for p in names:
            if p not in res.collection.partitions:
                raise PartitionNotFound(p)
            if p not in res.partitions:
                raise PartitionNotLoaded(p)
        return set(names)

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
        check_name("collection", collection_name)
        quick = schema is None
        if quick:
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
        schema.validate()
        specs = self._checked_specs(schema, index_params or [])
        with self._lock:
            self._refuse_damaged(collection_name)
            if collection_name in self._colls:
                existing = self._colls[collection_name]
                if existing.schema == schema:
                    return
                raise ParamError(f"create duplicate collection with different parameters, "
                                 f"collection: {collection_name}: drop it first or pick "
                                 "another name")
            path = self._dir.new_folder()
            coll = None
            try:
                coll = Collection.create(path, collection_name, schema, self._seal_bytes)
                coll.verify = self._verify
                coll.manifest["indexes"] = [self._index_entry(coll, s) for s in specs]
                coll.save_manifest()
                self._dir.add(collection_name, path)
            except WriteFailed:  # nothing of it may stay on disk
                if coll is not None:
                    coll.close()
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._colls[collection_name] = coll
        if quick or index_params is not None:
            self.load_collection(collection_name)

    def _checked_specs(self, schema: CollectionSchema, index_params: Any) -> list[IndexSpec]:
        specs = []
        for spec in index_params:
            f = schema.field(spec.field_name)
            if f is None:
                raise FieldNotFound(spec.field_name, "index params")
            specs.append(spec.checked_for(f.is_vector))
        return specs

    def drop_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        check_name("collection", collection_name)
        with self._lock:
            coll = self._colls.get(collection_name)
            damaged = self._damaged.get(collection_name)
            if damaged is None and coll is None:
                return  # Milvus: dropping a missing collection succeeds
            self._dir.unlist(collection_name)  # refused: WriteFailed, nothing changed
            if damaged is not None:
                del self._damaged[collection_name]
                self._dir.delete(damaged[0])
                return
            self._release(collection_name, persist=False)
            coll.close()
            del self._colls[collection_name]
            self._dir.delete(coll.path)

    def has_collection(self, collection_name: str, timeout: float | None = None,
                       **kwargs: Any) -> bool:
        check_name("collection", collection_name)
        with self._lock.read():
            return collection_name in self._colls or collection_name in self._damaged

    def list_collections(self, **kwargs: Any) -> list[str]:
        with self._lock.read():
            return sorted([*self._colls, *self._damaged])

    def describe_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> dict:
        with self._lock.read():
            return self._describe(self._coll(collection_name))

    @staticmethod
    def _describe(coll: Collection) -> dict:
        s = coll.schema
        return {"collection_name": coll.name, "auto_id": s.auto_id, "num_shards": 1,
                "description": s.description,
                "fields": [f.describe(100 + i) for i, f in enumerate(s.fields)],
                "functions": [], "aliases": [], "collection_id": zlib.crc32(coll.name.encode()),
                "consistency_level": 0, "properties": {},
                "num_partitions": len(coll.partitions),
                "enable_dynamic_field": s.enable_dynamic_field}

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict:
        with self._lock.read():
            return {"row_count": self._coll(collection_name).row_count()}

    # -- writes ---------------------------------------------------------------------------
    def insert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict:
        ids = self._write(collection_name, data, partition_name, Kind.INSERT)
        return {"insert_count": len(ids), "ids": ids}

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict:
        ids = self._write(collection_name, data, partition_name, Kind.UPSERT)
        return {"upsert_count": len(ids), "ids": ids}

    def _write(self, name: str, data: Any, partition_name: str | None, kind: Kind) -> list:
        with self._lock:
            coll = self._coll(name)
            part = self._partition(coll, partition_name)
            if isinstance(data, list) and not data:  # as pymilvus: nothing to write, count 0
                return []
            batch = to_batch(coll.schema, data, auto_id_base=coll.next_seq() << 32,
                             keys_given=kind == Kind.UPSERT)
            if batch.num_rows == 0:
                return []
            if kind == Kind.UPSERT:
                dup = first_duplicate(batch.cols[coll.pk.name])
                if dup is not None:  # which row should win is not defined: refuse (Milvus 2.6)
                    raise DataError(f"upsert holds primary key {dup!r} more than once: give "
                                    "each key at most once per upsert call")
                if coll.schema.auto_id:  # as Milvus: the given keys are replaced by new ones
                    batch.cols[REPLACED_KEYS] = batch.cols[coll.pk.name]
                    batch.cols[coll.pk.name] = (coll.next_seq() << 32) + torch.arange(
                        batch.num_rows, dtype=torch.int64)
            coll.write(kind, part, batch)
            pk = batch.cols[coll.pk.name]
            return pk.tolist() if isinstance(pk, torch.Tensor) else pk.to_pylist()

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
               filter: str | None = None, partition_name: str | None = None,
               **kwargs: Any) -> dict:
        ids = kwargs.pop("pks", ids)
        if ids is not None and filter:
            raise ParamError("delete takes ids or filter, not both")
        if ids is None and not filter:
            raise ParamError("delete needs ids=[...] or filter='...'")
        with self._lock:
            coll = self._coll(collection_name)
            if ids is not None:
                keys = self._keys(coll, ids)
            else:
                keys = self._matching_keys(coll, filter, partition_name,
                                           kwargs.get("filter_params"))
            if len(keys) == 0:
                return {"delete_count": 0}
            part = self._partition(coll, partition_name) if partition_name else ""
            n = coll.write(Kind.DELETE, part, Batch(len(keys), {"pk": keys}))
            return {"delete_count": n}

    def _matching_keys(self, coll: Collection, filter: str, partition_name: str | None,
                       params: dict | None) -> Any:
        """Primary keys of the live rows matching ``filter`` (in one partition, or all).
        Resident partitions are filtered where they are; the others (all of them when the
        collection is not loaded) on a transient host copy of the filter's fields, so a
        delete by filter works in any load state (API.md rule 1)."""
        want = {self._partition(coll, partition_name)} if partition_name else set(coll.partitions)
        res = self._resident.get(coll.name)
        loaded = res.partitions if res is not None and res.state == LoadState.Loaded else set()
        flt = compile_filter(filter, coll.schema, set(res.fields) if loaded else None, params)
        segs = res.all_segments(want & loaded) if loaded else []
        if want - loaded:
            names = [n for n in loaded_names(coll.schema, None, False)
                     if n == coll.pk.name or n in flt.fields]
            segs += Loader.snapshot(coll, names, want - loaded).all_segments(want - loaded)
        spec = _search.OutputSpec((coll.pk.name,), (), False)
        rows = _search.query(coll.schema, segs, flt, spec, None, None, 0)
        return self._keys(coll, [r[coll.pk.name] for r in rows])

    def _keys(self, coll: Collection, ids: Any) -> Any:
        if isinstance(ids, (int, str, np.integer)):
            ids = [ids]
        if isinstance(ids, (np.ndarray, torch.Tensor)):
            ids = ids.tolist()
        ids = list(ids)
        if coll.pk.dtype == DataType.INT64:
            if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                       and -(1 << 63) <= i < (1 << 63) for i in ids):
                raise ParamError(f"primary key {coll.pk.name} is INT64: ids must be integers "
                                 "in the int64 range")
            return torch.tensor(ids, dtype=torch.int64)
        if not all(isinstance(i, str) for i in ids):
            raise ParamError(f"primary key {coll.pk.name} is VARCHAR: ids must be strings")
        return pa.array(ids, type=pa.string())

    def flush(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        with self._lock:
            self._coll(collection_name).flush()

    # -- reads ----------------------------------------------------------------------------
    def search(self, collection_name: str, data: Any, filter: str = "", limit: int = 10,
               output_fields: list[str] | None = None, search_params: dict | None = None,
               timeout: float | None = None, partition_names: list[str] | None = None,
               anns_field: str | None = None, **kwargs: Any) -> list[list[dict]]:
        with self._lock.read():
            res = self._loaded(collection_name)
            coll = res.collection
            field = self._anns_field(coll, res, anns_field)
            spec = self._index_of(coll, field.name)
            metric = spec.metric_type
            params = dict(search_params or {})
            asked = params.get("metric_type") or kwargs.get("metric_type")
            if asked and str(asked).upper() != metric:
                raise ParamError(f"metric type not match: expected={metric}, actual="
                                 f"{str(asked).upper()}; search with the index's metric or "
                                 "rebuild the index")
            offset = _offset(params.get("offset", kwargs.get("offset", 0)))
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1 or \
                    limit + offset > _search.MAX_TOPK:
                raise ParamError(f"limit (topk) should be in range [1, {_search.MAX_TOPK}], "
                                 f"got limit={limit}, offset={offset}")
            _refuse_unsupported(kwargs)
            decimals = _round_decimal(kwargs.get("round_decimal", -1))
            growing = not (params.get("ignore_growing") or kwargs.get("ignore_growing"))
            q = self._queries(data, field)
            flt = compile_filter(filter, coll.schema, set(res.fields),
                                     kwargs.get("filter_params"))
            out = _search.output_spec(coll.schema, res.fields, output_fields, include_pk=False)
            parts = self._searched_partitions(res, partition_names)
            plan = self._plan(coll, res, field.name, metric, q, params.get("params") or {})
            hits = _search.search(res, res.all_segments(parts, growing), field.name, plan, q,
                                  limit + offset, flt, out, decimals)
            return [h[offset:] for h in hits] if offset else hits

    def _plan(self, coll: Collection, res: Resident, field: str, metric: str, q: torch.Tensor,
              params: dict) -> _search.Plan:
        if not isinstance(params, dict):
            raise ParamError(f"search_params['params'] must be a dict, got {params!r}")
        lo, hi = _search.range_bounds(metric, params)
        spec = coll.ivf_spec()
        cent = res.centroids.get(field)
        if spec is None or spec.field_name != field or cent is None:
            return _search.Plan(metric, None, lo, hi)
        nlist = cent.shape[0]
        nprobe = ivf.check_nprobe(params, nlist, spec.params.get("nprobe", ivf.DEFAULT_NPROBE))
        probes = kernels.coarse_probe(q, cent, nprobe, metric, res.centroid_sq.get(field))
        return _search.Plan(metric, probes, lo, hi)

    def _anns_field(self, coll: Collection, res: Resident, anns_field: str | None):
        vectors = coll.schema.vector_fields
        if anns_field:
            f = coll.schema.field(anns_field)
            if f is None or not f.is_vector:
                raise FieldNotFound(anns_field, "anns_field (a vector field)")
        elif len(vectors) == 1:
            f = vectors[0]
        else:
            raise ParamError(f"collection {coll.name} has {len(vectors)} vector fields: name "
                             "the one to search with anns_field=")
        if f.name not in res.fields:
            raise ParamError(f"field {f.name} is not loaded: release the collection and load "
                             "it with this field in load_fields")
        return f

    def _index_of(self, coll: Collection, field_name: str) -> IndexSpec:
        for d in coll.manifest["indexes"]:
            if d["field_name"] == field_name:
                return IndexSpec.from_dict(d)
        raise IndexNotFound(coll.name, f"field {field_name}")

    def _queries(self, data: Any, field: Any) -> torch.Tensor:
        try:
            if isinstance(data, torch.Tensor):
                arr = data.detach().float().cpu().numpy()
            else:
                arr = np.asarray(data, dtype=np.float32)
        except (ValueError, TypeError):
            raise ParamError(f"search data must be a list of {field.dim}-dimensional vectors") from None
        if arr.ndim == 1 and arr.size:
            arr = arr[None, :]
        if arr.size == 0 or arr.shape[0] > MAX_NQ:
            raise ParamError(f"nq (number of search vectors) should be in range [1, {MAX_NQ}], "
                             f"got {0 if arr.size == 0 else arr.shape[0]}")
        if arr.ndim != 2 or arr.shape[1] != field.dim:
            got = arr.shape[-1] if arr.ndim >= 1 else 0
            raise ParamError(f"the dim ({got}) of search data is not equal to the dim "
                             f"({field.dim}) of field {field.name}")
        if not np.isfinite(arr).all():
            row = int((~np.isfinite(arr)).any(1).nonzero()[0][0])
            raise ParamError(f"search vector {row} holds NaN or infinity: no distance to it "
                             "can be ranked; give finite numbers")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,
              timeout: float | None = None, ids: Any = None,
              partition_names: list[str] | None = None, **kwargs: Any) -> list[dict]:
        limit = kwargs.get("limit")
        offset = _offset(kwargs.get("offset", 0))
        with self._lock.read():
            res = self._loaded(collection_name)
            coll = res.collection
            flt = compile_filter(filter, coll.schema, set(res.fields),
                                     kwargs.get("filter_params"))
            parts = self._searched_partitions(res, partition_names)
            segs = res.all_segments(parts, growing=not kwargs.get("ignore_growing"))
            if output_fields and [o.replace(" ", "").lower() for o in output_fields] == ["count(*)"]:
                keys = self._keys(coll, ids) if ids is not None else None
                if keys is None:
                    return [{"count(*)": _search.count(segs, flt)}]
                spec = _search.OutputSpec((coll.pk.name,), (), False)
                return [{"count(*)": len(_search.query(coll.schema, segs, flt, spec, keys, None, 0))}]
            if flt is None and ids is None and limit is None:
                raise ParamError("empty expression should be used with limit: give a filter, "
                                 "ids= or limit=")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                      or limit < 0):
                raise ParamError(f"limit must be a non-negative integer, got {limit!r}")
            if limit is not None and limit + offset > _search.MAX_TOPK:
                raise ParamError(f"invalid max query result window, (offset+limit) should be "
                                 f"in range [1, {_search.MAX_TOPK}], but got {limit + offset}")
            keys = self._keys(coll, ids) if ids is not None else None
            spec = _search.output_spec(coll.schema, res.fields, output_fields, include_pk=True)
            return _search.query(coll.schema, segs, flt, spec, keys, limit, offset)

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            timeout: float | None = None, partition_names: list[str] | None = None,
            **kwargs: Any) -> list[dict]:
        return self.query(collection_name, "", output_fields, ids=ids,
                          partition_names=partition_names)

    # -- indexes ---------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: IndexParams,
                     timeout: float | None = None, **kwargs: Any) -> None:
        with self._lock:
            coll = self._coll(collection_name)
            specs = self._checked_specs(coll.schema, index_params)
            indexes = [IndexSpec.from_dict(d) for d in coll.manifest["indexes"]]
            added = []
            for spec in specs:
                same_field = [s for s in indexes if s.field_name == spec.field_name]
                if same_field:
                    if same_field[0] == spec:
                        continue
                    raise MilvusException(
                        f"at most one distinct index is allowed per field: {spec.field_name} "
                        f"already has index {same_field[0].index_name} "
                        f"({same_field[0].index_type}); drop it first")
                if any(s.index_name == spec.index_name for s in indexes):
                    raise MilvusException(f"index name {spec.index_name} is already used by "
                                          "another field: pick another index_name")
                indexes.append(spec)
                added.append(spec)
            entries = [self._index_entry(coll, s) for s in added]
            ivf_new = [e for e in entries if e["engine_type"] == "IVF_FLAT"]
            if ivf_new:
                if coll.ivf_spec() is not None or len(ivf_new) > 1:
                    raise ParamError("a collection has at most one IVF index: its rows are "
                                     "stored in that index's list order")
                if collection_name in self._resident:
                    raise MilvusException(
                        "IVF_FLAT cannot be built while the collection is loaded (its segments "
                        "are rewritten in list order): release it first, then create the index")
            coll.manifest["indexes"] += entries
            coll.save_manifest()
            if ivf_new:
                coll.build_ivf()

    def _index_entry(self, coll: Collection, spec: IndexSpec) -> dict:
        """The manifest entry of a new index; AUTOINDEX resolves by size, here and once."""
        entry = spec.to_dict()
        entry["index_id"] = coll.manifest["next_index_id"]
        coll.manifest["next_index_id"] += 1
        etype, eparams = spec.index_type, dict(spec.params)
        if etype == "AUTOINDEX" and coll.schema.field(spec.field_name).is_vector:
            if coll.row_count() >= ivf.AUTO_IVF_MIN_ROWS:
                etype, eparams = "IVF_FLAT", {"nlist": ivf.AUTO_NLIST, "nprobe": ivf.AUTO_NPROBE}
            else:
                etype = "FLAT"
        entry.update(engine_type=etype, engine_params=eparams, trained=False)
        return entry

    def list_indexes(self, collection_name: str, field_name: str = "", **kwargs: Any) -> list[str]:
        with self._lock.read():
            coll = self._coll(collection_name)
            return [d["index_name"] for d in coll.manifest["indexes"]
                    if not field_name or d["field_name"] == field_name]

    def describe_index(self, collection_name: str, index_name: str,
                       timeout: float | None = None, **kwargs: Any) -> dict:
        check_name("index", index_name)
        with self._lock:
            coll = self._coll(collection_name)
            for d in coll.manifest["indexes"]:
                if d["index_name"] == index_name:
                    rows = coll.row_count()
                    out = {**d["params"], "index_type": d["index_type"],
                           "field_name": d["field_name"], "index_name": d["index_name"],
                           "total_rows": rows, "indexed_rows": rows, "pending_index_rows": 0,
                           "state": "Finished"}
                    if d["metric_type"]:
                        out["metric_type"] = d["metric_type"]
                    return out
            raise MilvusException(f"index not found[indexName={index_name}]: see "
                                  "list_indexes()", code=700)

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        check_name("index", index_name)
        with self._lock:
            coll = self._coll(collection_name)
            if collection_name in self._resident:
                raise IndexCannotBeDropped()
            if not coll.drop_index(index_name):
                raise MilvusException(f"index not found[indexName={index_name}]: see "
                                      "list_indexes()", code=700)

    # -- load and release ---------------------------------------------------------------
    def load_collection(self, collection_name: str, timeout: float | None = None,
                        replica_number: int = 1, load_fields: list[str] | None = None,
                        skip_load_dynamic_field: bool = False, _async: bool = False,
                        refresh: bool = False, **kwargs: Any) -> None:
        with self._lock:
            coll = self._coll(collection_name)
            if refresh and collection_name in self._resident:
                self.refresh_load(collection_name)
                return
            fields = self._check_load_fields(coll, load_fields)
            if replica_number != 1:
                res = self._resident.get(collection_name)
                if res is not None:
                    raise ParamError("can't change the replica number for loaded collection: "
                                     "release it first")
                raise ParamError(f"replica_number={replica_number} needs that many devices; "
                                 "this engine serves a collection from one device")
            res = self._resident.get(collection_name)
            if res is not None:
                if res.load_fields != fields or res.skip_dynamic != bool(skip_load_dynamic_field):
                    raise ParamError("can't change the load field list for loaded collection: "
                                     "release the collection first, then load with the new "
                                     "field list")
                if res.partitions != set(coll.partitions):  # after load_partitions: load all
                    self._check_expansion(coll, res, set(coll.partitions))
                    self._release(collection_name, persist=False)
                    res = None
            if res is None:
                res = self._start_load(coll, fields, bool(skip_load_dynamic_field), None,
                                       _async=_async)
        if not _async:
            self._finish(res)

    def _finish(self, res: Resident) -> None:
        res.done.wait()
        if res.error is not None:
            err = res.error
            with self._lock:
                self._forget_failed(res)
            if isinstance(err, MilvusException):
                raise err
            raise MilvusException(f"load of {res.collection.name} failed: {err}") from err

    def _forget_failed(self, res: Resident) -> None:
        """A load that failed leaves nothing behind: not resident, intent not loaded. The
        error is kept for ``take_load_error`` (how a background load reports failure)."""
        name = res.collection.name
        if self._resident.get(name) is res:
            self._release(name)
            if isinstance(res.error, MilvusException):
                self._load_errors[name] = res.error

    def take_load_error(self, collection_name: str) -> MilvusException | None:
        """The error of the last background load of a collection that failed, once."""
        with self._lock:
            res = self._resident.get(collection_name)
            if res is not None and res.state == LoadState.NotLoad and res.done.is_set():
                self._forget_failed(res)
            return self._load_errors.pop(collection_name, None)

    def _check_load_fields(self, coll: Collection, load_fields: Any) -> tuple | None:
        if not load_fields:
            fields = None
        else:
            if isinstance(load_fields, str):
                load_fields = [load_fields]
            listed = list(load_fields)
            for name in listed:
                if coll.schema.field(name) is None:
                    raise FieldNotFound(name, "load_fields")
            if coll.pk.name not in listed:
                raise ParamError(f"load field list {listed} does not contain primary key field "
                                 f"{coll.pk.name}")
            if not any(coll.schema.field(n).is_vector for n in listed):
                raise ParamError(f"load field list {listed} does not contain vector field")
            fields = tuple(sorted(set(listed)))
        names = loaded_names(coll.schema, list(fields) if fields else None, False)
        indexed = {d["field_name"] for d in coll.manifest["indexes"]}
        for f in coll.schema.vector_fields:
            if f.name in names and f.name not in indexed:
                raise IndexNotFound(coll.name, f"vector field {f.name} has no index")
        return fields

    def _check_expansion(self, coll: Collection, res: Resident, partitions: set[str]) -> None:
        """Loading more partitions of a loaded collection reloads it whole: refuse up front
        (1400, what is loaded stays loaded) unless the bigger load fits in what is free
        plus what the collection holds now."""
        names = loaded_names(coll.schema, list(res.load_fields) if res.load_fields else None,
                             res.skip_dynamic)
        bigger = Resident(coll, names, res.load_fields, res.skip_dynamic, partitions)
        need = self._loader.plan(bigger)
        room = self.allocator.free_bytes + self.allocator.collection_info(coll.name)["bytes"]
        if need > room:
            raise InsufficientMemory(str(self.device), need, room,
                                     f"partitions {sorted(partitions)} of {coll.name}")

    def _start_load(self, coll: Collection, fields: Any, skip_dynamic: bool,
                    partitions: list[str] | None, _async: bool) -> Resident:
        fields = tuple(fields) if fields else None
        names = loaded_names(coll.schema, list(fields) if fields else None, skip_dynamic)
        parts = set(partitions) if partitions else set(coll.partitions)
        res = Resident(coll, names, fields, skip_dynamic, parts)
        res.planned = self._loader.plan(res)
        self.allocator.reserve(coll.name, res.planned, f"collection {coll.name}")
        self._resident[coll.name] = res
        intent = {"loaded": True, "load_fields": list(fields) if fields else None,
                  "skip_dynamic": skip_dynamic,
                  "partitions": sorted(parts) if partitions else None}
        if coll.manifest["load"] != intent:  # a restored load has it already
            coll.manifest["load"] = intent
            try:
                coll.save_manifest()
            except WriteFailed:
                del self._resident[coll.name]
                self.allocator.unreserve(coll.name)
                raise
        if _async:
            self._loader.start(res)
        else:
            self._loader.run(res)
        return res

    def release_collection(self, collection_name: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        with self._lock:
            self._coll(collection_name)
            self._release(collection_name)

    def _release(self, name: str, persist: bool = True) -> None:
        res = self._resident.pop(name, None)
        if res is not None:
            self._loader.release(res)
        coll = self._colls[name]
        if persist and coll.manifest["load"]["loaded"]:
            coll.manifest["load"] = {"loaded": False, "load_fields": None,
                                     "skip_dynamic": False, "partitions": None}
            coll.save_manifest()

    def get_load_state(self, collection_name: str, partition_name: str = "",
                       timeout: float | None = None, **kwargs: Any) -> dict:
        """As pymilvus; Hotset's ``partition_names=[...]`` gives the least advanced state of
        those partitions (what Milvus's REST and gRPC GetLoadState answer)."""
        names = kwargs.get("partition_names")
        if names:
            states = [self._load_state(collection_name, p) for p in check_names("partition",
                                                                              names)]
            return min(states, key=lambda st: st["state"])
        return self._load_state(collection_name, partition_name)

    def _load_state(self, collection_name: str, partition_name: str) -> dict:
        with self._lock.read():
            coll = self._colls.get(collection_name)
            if coll is None:
                self._refuse_damaged(collection_name)
                return {"state": LoadState.NotExist}
            if partition_name and partition_name not in coll.partitions:
                return {"state": LoadState.NotExist}
            res = self._resident.get(collection_name)
            if res is None or (partition_name and partition_name not in res.partitions):
                return {"state": LoadState.NotLoad}
            if res.state == LoadState.Loading:
                return {"state": LoadState.Loading, "progress": res.progress}
            if res.state != LoadState.NotLoad:
                return {"state": LoadState.Loaded}
        with self._lock:  # a failed async load: forget it (a write)
            self._forget_failed(res)
        return {"state": LoadState.NotLoad}

    def refresh_load(self, collection_name: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        with self._lock:
            res = self._loaded(collection_name)
            for seg in res.collection.adopt_new_segments():
                if seg.partition in res.partitions:
                    self._loader.load_segment(res, seg)

    # -- partitions -----------------------------------------------------------------------
    def create_partition(self, collection_name: str, partition_name: str,
                         timeout: float | None = None, **kwargs: Any) -> None:
        with self._lock:
            coll = self._coll(collection_name)
            check_name("partition", partition_name)
            if partition_name in coll.partitions:
                return
            coll.manifest["partitions"].append(partition_name)
            coll.save_manifest()
            res = self._resident.get(collection_name)
            if res is not None and coll.manifest["load"].get("partitions") is None:
                res.partitions.add(partition_name)  # a fully loaded collection stays full

    def list_partitions(self, collection_name: str, **kwargs: Any) -> list[str]:
        with self._lock.read():
            return self._coll(collection_name).partitions

    def has_partition(self, collection_name: str, partition_name: str, **kwargs: Any) -> bool:
        check_name("partition", partition_name)
        with self._lock.read():
            return partition_name in self._coll(collection_name).partitions

    def drop_partition(self, collection_name: str, partition_name: str,
                       timeout: float | None = None, **kwargs: Any) -> None:
        check_name("partition", partition_name)
        with self._lock:
            coll = self._coll(collection_name)
            if partition_name == DEFAULT_PARTITION:
                raise ParamError("default partition cannot be deleted")
            if partition_name not in coll.partitions:
                return
            res = self._resident.get(collection_name)
            if res is not None and partition_name in res.partitions:
                raise MilvusException(f"partition cannot be dropped, partition is loaded, "
                                      f"please release it first[partition={partition_name}]")
            coll.drop_partition_data(partition_name)

    def load_partitions(self, collection_name: str, partition_names: list[str],
                        timeout: float | None = None, **kwargs: Any) -> None:
        partition_names = check_names("partition", partition_names)
        if kwargs.get("replica_number", 1) not in (None, 1):
            raise ParamError(f"replica_number={kwargs['replica_number']} needs that many "
                             "devices; this engine serves a collection from one device")
        with self._lock:
            coll = self._coll(collection_name)
            for p in partition_names:
                if p not in coll.partitions:
                    raise PartitionNotFound(p)
            fields = self._check_load_fields(coll, kwargs.get("load_fields"))
            skip = bool(kwargs.get("skip_load_dynamic_field", False))
            res = self._resident.get(collection_name)
            wanted = set(partition_names)
            if res is not None:
                if res.load_fields != fields and kwargs.get("load_fields") is not None:
                    raise ParamError("can't change the load field list for loaded collection: "
                                     "release the collection first")
                if wanted <= res.partitions:
                    wait = res
                else:
                    fields, skip = res.load_fields, res.skip_dynamic
                    wanted |= res.partitions
                    self._check_expansion(coll, res, wanted)
                    self._release(collection_name, persist=False)
                    wait = self._start_load(coll, fields, skip, sorted(wanted), _async=False)
            else:
                wait = self._start_load(coll, fields, skip, sorted(wanted), _async=False)
        self._finish(wait)

    def release_partitions(self, collection_name: str, partition_names: list[str],
                           timeout: float | None = None, **kwargs: Any) -> None:
        partition_names = check_names("partition", partition_names)
        with self._lock:
            coll = self._coll(collection_name)
            res = self._resident.get(collection_name)
            if res is None:
                return
            keep = res.partitions - set(partition_names)
            if not keep:
                self._release(collection_name)
                return
            for p in set(partition_names) & res.partitions:
                self.allocator.free(coll.name, p)
                res.segments = {k: s for k, s in res.segments.items() if s.partition != p}
                res.growing.pop(p, None)
            res.partitions = keep
            coll.manifest["load"]["partitions"] = sorted(keep)
            coll.save_manifest()

    # -- Hotset's own ---------------------------------------------------------------------
    def memory_info(self, collection_name: str | None = None) -> dict:
        if collection_name is not None:
            return self.allocator.collection_info(collection_name)
        return self.allocator.memory_info()

    def collection_schema(self, collection_name: str) -> CollectionSchema:
        """The collection's schema object (``describe_collection`` gives Milvus's dict)."""
        with self._lock.read():
            return self._coll(collection_name).schema

    def output_spec(self, collection_name: str,
                    output_fields: list[str] | None) -> _search.OutputSpec:
        """The schema fields and dynamic keys a search or query with ``output_fields``
        returns, by the same rules (limited to the loaded fields while loaded)."""
        with self._lock.read():
            coll = self._coll(collection_name)
            res = self._resident.get(collection_name)
            loaded = res.fields if res is not None else coll.schema.names
            return _search.output_spec(coll.schema, loaded, output_fields, include_pk=False)

    def persistent_segments(self, collection_name: str) -> list[dict]:
        """The sealed segments on disk: ``[{"segment_id", "partition", "num_rows"}]``."""
        with self._lock.read():
            return [{"segment_id": s.id, "partition": s.partition, "num_rows": s.num_rows}
                    for s in self._coll(collection_name).sealed]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            for name, coll in self._colls.items():
                res = self._resident.pop(name, None)
                if res is not None:
                    self._loader.release(res)  # the persisted intent stays
                try:
                    coll.flush()
                except WriteFailed as e:  # the rows are in the WAL: replayed at the next open
                    warnings.warn(f"collection {name}: not sealed at close, its rows stay in "
                                  f"the write-ahead log: {e.message}", RuntimeWarning,
                                  stacklevel=3)
                coll.close()
            self._closed = True
            self._dir.close()

    def __enter__(self) -> "MilvusClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["MilvusClient", "DataError", "DYNAMIC_FIELD"]

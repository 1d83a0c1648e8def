"""What a loaded collection keeps on its device.

A :class:`ResidentSegment` holds the loaded fields of one sealed segment (tensors on the
device; Arrow columns in host memory, which is the device when it is "cpu") and its
deleted-row mask. A :class:`ResidentGrowing` holds the loaded fields of a partition's
growing segment in buffers that grow by doubling, so inserts after load are searchable at
once (API.md rule 8). Every buffer is registered with the DeviceAllocator under its owner
tag; nothing here is allocated behind its back. A segment made resident by a load
registers through the load's reservation (``budget``); caches a read builds (norms, JSON
paths) reserve their own bytes first. A sealed segment also holds its scalar and JSON-path
indexes (``index/scalar.py``), which filters use in place of a scan.
"""
from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa
import torch

from .allocator import DeviceAllocator, Owner, Reservation, nbytes_of
from .errors import InsufficientMemory
from .columns import Batch
from .expr import json_path
from .index import scalar
from .schema import DYNAMIC_FIELD, CollectionSchema
from .storage.segments import ShardRows

DELETED_PART = "$deleted"
CACHE_PART = "$cache"  # typed columns of JSON paths used by filters
MIN_GROWING_CAPACITY = 1024


class ResidentSegment:
    """Loaded columns of one sealed segment. Implements the expression ColumnSource."""

    def __init__(self, collection: str, partition: str, key: str, num_rows: int,
                 device: torch.device, allocator: DeviceAllocator,
                 budget: Reservation | None = None) -> None:
        self.collection, self.partition, self.key = collection, partition, key
        self.num_rows = num_rows
        self.device = device
        self.allocator = allocator
        self.budget = budget if budget is not None else allocator  # what registrations draw
        self.cols: dict[str, Any] = {}
        self.exact: dict[str, Any] = {}  # vector -> its stored rows, where ``cols`` scans
                                         # another copy (float16 residency)
        self.valid: dict[str, torch.Tensor] = {}
        self.deleted = torch.zeros(0, dtype=torch.bool, device=device)
        self.any_deleted = False  # lets a scan skip the live mask altogether
        self._json_cache: dict[tuple, tuple[int, json_path.JsonValues]] = {}
        self.layouts: dict[str, dict[str, torch.Tensor]] = {}  # vector field -> index layout
        self._norms: dict[str, torch.Tensor] = {}
        self.scalar: dict[str, Any] = {}  # field -> its SortedIndex or DictionaryIndex
        self.paths: dict[tuple, dict] = {}  # (field, JSON path) -> typed columns indexed
        self._cache_warned: set = set()  # caches that did not fit, warned about once

    def owner(self, part: str) -> Owner:
        return Owner(self.collection, self.partition, self.key, part)

    def put(self, name: str, col: Any, valid: torch.Tensor | None = None) -> None:
        """A loaded column (a tensor or Arrow column; or a quantised index's rows kept off
        the device: a CPU tensor in host memory, or ``ShardRows`` left on disk, which
        hold no memory) and its validity."""
        off_device = isinstance(col, ShardRows) or (
            isinstance(col, torch.Tensor) and col.device.type == "cpu"
            and self.device.type != "cpu")
        if off_device:
            if not isinstance(col, ShardRows):
                self.budget.register(self.owner(name), col, host=True)
            if valid is not None:
                self.budget.register(self.owner(f"{name}/valid"), valid)
        else:
            self.budget.register(self.owner(name), *([col] if valid is None else [col, valid]))
        self.cols[name] = col
        if valid is not None:
            self.valid[name] = valid

    def norms(self, field: str) -> torch.Tensor:
        """(n,) float32 squared norms of a vector field's rows, computed once and kept
        resident (part ``<field>/norms``, its bytes reserved before they are allocated);
        after a growing segment grew, only the new rows are computed. When the device has
        no room to keep them, they are computed for this search only (the same numbers,
        more work), with a warning: a cache must not fail a search."""
        hit = self._norms.get(field)
        if hit is None or hit.numel() != self.num_rows:
            x = self.column(field)
            done = hit.numel() if hit is not None and hit.numel() < x.shape[0] else 0
            grow = (x.shape[0] - (0 if hit is None else hit.numel())) * 4
            r = self._cache_room(grow, field, f"the squared norms of {field}")
            if r is None:
                return _squared_norms(x, hit if done else None, done, self.device)
            with r:
                fresh = _squared_norms(x, hit if done else None, done, self.device)
                r.register(self.owner(f"{field}/norms"), fresh)
            self._norms[field] = hit = fresh
        return hit

    def _cache_room(self, nbytes: int, key: Any, what: str) -> Reservation | None:
        """A reservation for a read-path cache, or None (warned once per cache) when the
        device has no room: the caller then serves this read without keeping it."""
        try:
            return self.allocator.reserve(max(nbytes, 0), f"{what} of {self.collection}")
        except InsufficientMemory as e:
            if key not in self._cache_warned:
                self._cache_warned.add(key)
                warnings.warn(f"collection {self.collection}: {what} do not fit on the device "
                              f"({e.message}); they are computed per read until memory frees "
                              "up", RuntimeWarning, stacklevel=3)
            return None

    def put_layout(self, field: str, layout: dict[str, torch.Tensor],
                   labels: dict[str, str]) -> None:
        """A vector index's layout tensors for ``field`` (parts ``<field>/<label>``; tensors
        that share a label are one part)."""
        parts: dict[str, list[torch.Tensor]] = {}
        for name, t in layout.items():
            parts.setdefault(labels.get(name, name), []).append(t)
        for label, tensors in parts.items():
            self.budget.register(self.owner(f"{field}/{label}"), *tensors)
        self.layouts[field] = layout

    def put_index(self, name: str, t: scalar.Target, built: Any,
                  budget: Reservation | None = None) -> None:
        """A scalar or JSON-path index built on this segment (part ``index/<name>``)."""
        (budget or self.budget).register(self.owner(scalar.INDEX_PART + name),
                                         *scalar.objects_of(built))
        if t.kind == "path":
            self.paths.setdefault((t.field, t.path), {}).update(built)
        else:
            self.scalar[t.field] = built

    def scalar_index(self, field: str) -> Any:
        """The field's SortedIndex or DictionaryIndex on this segment, or None."""
        return self.scalar.get(field)

    def put_deleted(self, deleted: torch.Tensor) -> None:
        self.budget.register(self.owner(DELETED_PART), deleted)
        self.deleted = deleted
        self.any_deleted = bool(deleted.any())

    def mark_deleted(self, hit: torch.Tensor) -> None:
        self.deleted[: hit.numel()] |= hit.to(self.device)
        self.any_deleted = self.any_deleted or bool(hit.any())

    def live_mask_or_none(self) -> torch.Tensor | None:
        """The live-row mask, or None when no row is deleted (nothing to mask)."""
        return self.live_mask() if self.any_deleted else None

    # -- ColumnSource -------------------------------------------------------------------
    def column(self, name: str) -> Any:
        return self.cols[name]

    def validity(self, name: str) -> torch.Tensor | None:
        return self.valid.get(name)

    def live_mask(self) -> torch.Tensor:
        return ~self.deleted[: self.num_rows]

    def json_values(self, field: str, path: tuple) -> Any:
        """Typed columns of one JSON path: from its JSON-path indexes for the types they
        hold, else from the read-path cache."""
        held = self.paths.get((field, path))
        if held is not None:
            return json_path.Indexed(held, lambda: self._json_cached(field, path))
        return self._json_cached(field, path)

    def _json_cached(self, field: str, path: tuple) -> json_path.JsonValues:
        """Typed columns of one JSON path (cached; a growing segment extends its cache).
        When the device has no room to keep them, they serve this filter only, with a
        warning, as the norms do."""
        col = self.column(field)
        n = len(col)
        key = (field, path)
        hit = self._json_cache.get(key)
        if hit is None or hit[0] != n:
            if hit is not None and hit[0] < n:
                vals = json_path.concat(hit[1], json_path.extract(col.slice(hit[0]), path,
                                                                  self.device))
            else:
                vals = json_path.extract(col, path, self.device)
            objs = [o for _, v in ({**self._json_cache, key: (n, vals)}).values()
                    for o in v.objects()]
            owner = self.owner(CACHE_PART)
            grow = sum(device_bytes(o, self.device) for o in objs) - self.allocator.held(owner)
            r = self._cache_room(grow, key, f"the typed values of {field}{list(path)}")
            if r is None:
                return vals
            with r:
                r.register(owner, *objs)
            self._json_cache[key] = (n, vals)
        return self._json_cache[key][1]


class ResidentGrowing(ResidentSegment):
    """Loaded columns of a growing segment, in capacity-doubling device buffers."""

    def __init__(self, collection: str, partition: str, schema: CollectionSchema,
                 fields: list[str], device: torch.device, allocator: DeviceAllocator,
                 budget: Reservation | None = None) -> None:
        super().__init__(collection, partition, "growing", 0, device, allocator, budget)
        self.schema = schema
        self.fields = fields
        self.capacity = 0
        self._bufs: dict[str, torch.Tensor] = {}
        self._valid_bufs: dict[str, torch.Tensor] = {}
        self._chunks: dict[str, list[pa.Array]] = {}
        for name in fields:
            f = schema.field(name)
            if f is None or not f.is_fixed:
                arrow_type = pa.string() if f is None else f.arrow_type()
                self._chunks[name] = [pa.array([], type=arrow_type)]
        self._deleted_buf = torch.zeros(0, dtype=torch.bool, device=device)

    @staticmethod
    def planned_bytes(schema: CollectionSchema, fields: list[str], batch: Batch,
                      arrow_on_device: bool) -> int:
        arrow = sum(batch.cols[name].nbytes for name in fields if name in batch.cols
                    and not isinstance(batch.cols[name], torch.Tensor)) if arrow_on_device else 0
        return _capacity_for(batch.num_rows) * _row_bytes(schema, fields) + arrow

    def growth_bytes(self, batch: Batch) -> int:
        """Device bytes ``append(batch)`` would newly allocate (0 if it fits)."""
        n1 = self.num_rows + batch.num_rows
        extra = sum(c.nbytes for name, c in batch.cols.items()
                    if name in self.fields and not isinstance(c, torch.Tensor)) \
            if self.device.type == "cpu" else 0
        if n1 <= self.capacity:
            return extra
        return (_capacity_for(n1) - self.capacity) * _row_bytes(self.schema, self.fields) + extra

    def append(self, batch: Batch, deleted: torch.Tensor | None = None,
               budget: Reservation | None = None) -> None:
        """Append rows, registering new bytes through ``budget`` (a reservation taken for
        them) or this segment's own budget."""
        budget = budget if budget is not None else self.budget
        n0, n1 = self.num_rows, self.num_rows + batch.num_rows
        if n1 > self.capacity:
            self._grow(_capacity_for(n1), budget)
        for name in self.fields:
            col = batch.cols.get(name)
            if col is None:
                continue
            if isinstance(col, torch.Tensor):
                self._bufs[name][n0:n1].copy_(col, non_blocking=False)
                if name in self._valid_bufs:
                    self._valid_bufs[name][n0:n1].copy_(batch.valid[name])
            else:
                chunks = self._chunks.setdefault(name, [])
                chunks.append(col)
                budget.register(self.owner(name), *chunks)
        if deleted is not None:
            self._deleted_buf[n0:n1].copy_(deleted)
            self.any_deleted = self.any_deleted or bool(deleted.any())
        else:
            self._deleted_buf[n0:n1] = False
        self.num_rows = n1
        self._refresh_views()

    def _grow(self, capacity: int, budget: Any) -> None:
        for name in self.fields:
            f = self.schema.field(name)
            if f is None or not f.is_fixed:
                continue
            shape = (capacity, f.width) if f.is_vector else (capacity,)
            buf = torch.empty(shape, dtype=f.torch_dtype, device=self.device)
            objs = [buf]
            if name in self._bufs:
                buf[: self.num_rows].copy_(self._bufs[name][: self.num_rows])
            if f.nullable:
                vbuf = torch.zeros(capacity, dtype=torch.bool, device=self.device)
                if name in self._valid_bufs:
                    vbuf[: self.num_rows].copy_(self._valid_bufs[name][: self.num_rows])
                objs.append(vbuf)
            budget.register(self.owner(name), *objs)
            self._bufs[name] = buf
            if f.nullable:
                self._valid_bufs[name] = objs[1]
        dbuf = torch.zeros(capacity, dtype=torch.bool, device=self.device)
        dbuf[: self.num_rows].copy_(self._deleted_buf[: self.num_rows])
        budget.register(self.owner(DELETED_PART), dbuf)
        self._deleted_buf = dbuf
        self.capacity = capacity

    def column(self, name: str) -> Any:
        chunks = self._chunks.get(name)
        if chunks is not None:
            if len(chunks) > 1:  # merge lazily: appends stay O(batch)
                chunks[:] = [pa.concat_arrays(chunks)]
            return chunks[0]
        return self.cols[name]

    def _refresh_views(self) -> None:
        n = self.num_rows
        for name, buf in self._bufs.items():
            self.cols[name] = buf[:n]
        for name, buf in self._valid_bufs.items():
            self.valid[name] = buf[:n]
        self.deleted = self._deleted_buf[:n]

    def mark_deleted(self, hit: torch.Tensor) -> None:
        self._deleted_buf[: hit.numel()] |= hit.to(self.device)
        self.any_deleted = self.any_deleted or bool(hit.any())
        self._refresh_views()


def _squared_norms(x: torch.Tensor, known: torch.Tensor | None, done: int,
                   device: torch.device) -> torch.Tensor:
    """(n,) float32 squared norms of the rows of ``x``; the first ``done`` from ``known``."""
    out = torch.empty(x.shape[0], dtype=torch.float32, device=device)
    if done:
        out[:done] = known[:done]
    for s in range(done, x.shape[0], 1 << 16):
        xs = x[s:s + (1 << 16)].float()
        out[s:s + (1 << 16)] = (xs * xs).sum(1)
    return out


def device_bytes(obj: Any, device: torch.device) -> int:
    """Bytes ``obj`` counts against ``device`` (Arrow columns count only on the CPU)."""
    if isinstance(obj, torch.Tensor) or device.type == "cpu":
        return nbytes_of(obj)
    return 0


def _row_bytes(schema: CollectionSchema, fields: list[str]) -> int:
    """Device bytes one row of growing capacity takes: the fixed-width loaded fields, their
    validity bytes, and the deleted mask."""
    total = 1
    for name in fields:
        f = schema.field(name)
        if f is not None and f.is_fixed:
            total += f.row_bytes + (1 if f.nullable else 0)
    return total


def _capacity_for(n: int) -> int:
    cap = MIN_GROWING_CAPACITY
    while cap < n:
        cap *= 2
    return cap


def loaded_names(schema: CollectionSchema, load_fields: list[str] | None,
                 skip_dynamic: bool) -> list[str]:
    """The resident field names for a load configuration (schema order)."""
    names = [f.name for f in schema.fields
             if not load_fields or f.name in load_fields]
    if schema.enable_dynamic_field and not skip_dynamic:
        names.append(DYNAMIC_FIELD)
    return names

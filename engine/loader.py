"""Load / release orchestration and the LoadState machine.

load: plan (segments x loaded fields, with bytes) -> reserve all of it (or 1400) ->
copy part by part, counting bytes for progress -> attach to the collection's write path
-> Loaded. Any failure (or a release while loading) frees everything the load made
resident and returns the collection to NotLoad. Load never writes to disk except the
persisted load intent, which the client records.
"""
from __future__ import annotations

import atexit
import enum
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import torch

from .allocator import DeviceAllocator, Owner
from .collection import Collection
from .errors import InsufficientMemory, MilvusException, StorageError
from .resident import ResidentGrowing, ResidentSegment
from .segment import SealedSegment
from .storage.segments import has_valid, read_arrow, shard_path
from .transfer import Cancelled, HostToDevice


_background: dict[int, "Resident"] = {}  # loads running in background threads, by id
_background_lock = threading.Lock()


@atexit.register
def _stop_background_loads() -> None:
    """At interpreter exit, cancel the loads still copying in background threads and wait
    for them: a daemon thread caught inside torch while the interpreter tears down aborts
    the process. The persisted intent is kept, so the next open restores the load."""
    with _background_lock:
        running = list(_background.values())
    for res in running:
        res.cancelled = True
    for res in running:
        res.done.wait(timeout=60)


def _centroid_bytes(cent: torch.Tensor) -> int:
    """Resident bytes of an IVF index's centroids: float32 rows plus their squared norms."""
    return (cent.numel() + cent.shape[0]) * 4


class LoadState(enum.IntEnum):
    NotExist = 0
    NotLoad = 1
    Loading = 2
    Loaded = 3

    def __repr__(self) -> str:
        return f"<LoadState: {self.name}>"

    def __str__(self) -> str:
        return self.name


class LoadCancelled(Exception):
    """Raised inside a load when a release asked it to stop."""


@dataclass
class Resident:
    """A collection's resident state and the configuration it was loaded with."""

    collection: Collection
    fields: list[str]            # loaded field names (schema order, plus $meta)
    load_fields: tuple | None    # as the user gave it, normalised (sorted) or None
    skip_dynamic: bool
    partitions: set[str]
    segments: dict[int, ResidentSegment] = field(default_factory=dict)
    growing: dict[str, ResidentGrowing] = field(default_factory=dict)
    centroids: dict[str, torch.Tensor] = field(default_factory=dict)  # IVF, per field
    centroid_sq: dict[str, torch.Tensor] = field(default_factory=dict)  # their squared norms
    state: LoadState = LoadState.Loading
    planned: int = 0
    copied: int = 0
    cancelled: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def progress(self) -> int:
        if self.state == LoadState.Loaded or self.planned == 0:
            return 100 if self.state == LoadState.Loaded else 0
        return min(99, int(100 * self.copied / self.planned))

    def all_segments(self, partitions: set[str] | None = None,
                     growing: bool = True) -> list[ResidentSegment]:
        parts = self.partitions if partitions is None else partitions
        segs: list[ResidentSegment] = [s for s in self.segments.values() if s.partition in parts]
        if growing:
            segs += [g for p, g in self.growing.items() if p in parts and g.num_rows]
        return segs


class Loader:
    def __init__(self, allocator: DeviceAllocator, lock: Any) -> None:
        self.allocator = allocator
        self.device = allocator.device
        self.lock = lock
        self.h2d = HostToDevice(self.device)

    # -- planning -------------------------------------------------------------------------
    def _on_device(self, coll: Collection, name: str) -> bool:
        """Does this field's resident copy count against the device (Arrow columns live in
        host memory, which is the device only when the device is the CPU)?"""
        f = coll.schema.field(name)
        return self.device.type == "cpu" or (f is not None and f.is_fixed)

    def _segment_bytes(self, coll: Collection, seg: SealedSegment, fields: list[str]) -> int:
        meta = coll.segment_meta(seg.id)["bytes"]
        total = seg.num_rows + sum(meta.get(name, 0) for name in fields
                                   if self._on_device(coll, name))
        if seg.ivf_field in fields:
            total += seg.ivf_offsets.numel() * 8
        return total

    def plan(self, res: Resident) -> int:
        coll = res.collection
        total = sum(_centroid_bytes(c) for f, c in coll.centroids.items() if f in res.fields)
        for seg in coll.sealed:
            if seg.partition in res.partitions:
                total += self._segment_bytes(coll, seg, res.fields)
        for part, g in coll.growing.items():
            if part in res.partitions and g.num_rows:
                total += ResidentGrowing.planned_bytes(coll.schema, res.fields, g.data(),
                                                       self.device.type == "cpu")
        return total

    # -- load -----------------------------------------------------------------------------
    def start(self, res: Resident) -> None:
        """``run`` in a background thread (``_async=True``, a restored load intent); the
        load is cancelled and waited for if the interpreter exits first."""
        with _background_lock:
            _background[id(res)] = res

        def body() -> None:
            try:
                self.run(res)
            finally:
                with _background_lock:
                    _background.pop(id(res), None)

        threading.Thread(target=body, daemon=True,
                         name=f"hotset-load-{res.collection.name}").start()

    def run(self, res: Resident) -> None:
        """Copy everything planned; on any failure roll back. Runs in the caller's thread
        (sync load) or a background thread (``_async=True``)."""
        name = res.collection.name
        try:
            self._acquire(res)
            try:
                todo = [s for s in res.collection.sealed if s.partition in res.partitions]
                trained = dict(res.collection.centroids)
            finally:
                self.lock.release()
            for field, cent in trained.items():
                if field in res.fields:
                    self._put_centroids(res, field, cent)
            for seg in todo:
                if res.cancelled:
                    raise LoadCancelled()
                if seg.partition not in res.partitions:
                    continue  # its partition was released while this load ran
                self._load_sealed(res, seg)
                if seg.partition not in res.partitions:  # released while it was copied
                    self._drop_segment(res, seg)
            self._acquire(res)
            try:  # growing rows, segments sealed and rows deleted meanwhile; then attach
                if res.cancelled:
                    raise LoadCancelled()
                for seg in res.collection.sealed:
                    if seg.partition not in res.partitions:
                        continue
                    if seg.id not in res.segments:
                        self._load_sealed(res, seg)
                    else:
                        res.segments[seg.id].put_deleted(self.h2d.to_device(seg.deleted.clone()))
                for part, g in res.collection.growing.items():
                    if part in res.partitions:
                        self._load_growing(res, part, g)
                res.collection.listener = lambda event, *a: self._on_event(res, event, *a)
                self.allocator.unreserve(name)
                res.state = LoadState.Loaded
            finally:
                self.lock.release()
        except BaseException as e:  # roll back completely, whatever went wrong
            self._drop(res)
            res.error = e
            res.state = LoadState.NotLoad
            if not isinstance(e, (LoadCancelled, MilvusException, Exception)):
                raise
        finally:
            res.done.set()

    def _drop_segment(self, res: Resident, seg: SealedSegment) -> None:
        res.segments.pop(seg.id, None)
        self.allocator.free(res.collection.name, seg.partition, str(seg.id))

    def load_segment(self, res: Resident, seg: SealedSegment) -> None:
        """Make one more sealed segment of a Loaded collection resident (refresh_load)."""
        need = self._segment_bytes(res.collection, seg, res.fields)
        self.allocator.reserve(res.collection.name, need, f"segment {seg.id}")
        try:
            self._load_sealed(res, seg)
        except BaseException:
            self._drop_segment(res, seg)
            raise
        finally:
            self.allocator.unreserve(res.collection.name)

    def _acquire(self, res: Resident) -> None:
        if not self.lock.acquire(abandon=lambda: res.cancelled):  # a release may hold it
            raise LoadCancelled()

    def _load_sealed(self, res: Resident, seg: SealedSegment) -> None:
        coll = res.collection
        seg_dir = coll.segment_dir(seg.id)
        rs = ResidentSegment(coll.name, seg.partition, str(seg.id), seg.num_rows,
                             self.device, self.allocator)
        res.segments[seg.id] = rs
        sizes = coll.segment_meta(seg.id)["bytes"]

        def copied(n: int) -> None:
            res.copied += n

        def cancelled() -> bool:
            return res.cancelled

        for name in res.fields:
            if name not in sizes:
                continue
            f = coll.schema.field(name)
            fixed = f is not None and f.is_fixed
            stem, sums = coll.stems[name], coll.file_sums(seg.id, name, fixed)
            try:
                if not fixed:
                    arr = read_arrow(seg_dir, stem, sums)
                else:
                    t = self.h2d.load(seg_dir, stem, on_bytes=copied, cancelled=cancelled,
                                      sums=sums)
                    v = None
                    if f.nullable and has_valid(seg_dir, stem):
                        v = self.h2d.load(seg_dir, stem, "valid", copied, cancelled, sums)
            except Cancelled:
                raise LoadCancelled() from None
            except (OSError, ValueError, pa.ArrowException) as e:  # ArrowInvalid, bad JSON
                raise StorageError(coll.name, f"field {name} of segment {seg.id}",
                                   shard_path(seg_dir, stem, fixed), e,
                                   "The load was rolled back: nothing of it is resident.") from e
            if fixed:
                rs.put(name, t, v)
            else:
                rs.put(name, arr)
                if self._on_device(coll, name):
                    res.copied += sizes[name]
            if res.cancelled:
                raise LoadCancelled()
        rs.put_deleted(self.h2d.to_device(seg.deleted.clone()))
        res.copied += seg.num_rows
        if seg.ivf_field in res.fields:
            rs.put_offsets(seg.ivf_field, self.h2d.to_device(seg.ivf_offsets))
            res.copied += seg.ivf_offsets.numel() * 8

    def _put_centroids(self, res: Resident, name: str, cent: torch.Tensor) -> None:
        t = self.h2d.to_device(cent)
        self.allocator.register(Owner(res.collection.name, "", "index", f"{name}/centroids"), t)
        res.centroids[name] = t
        sq = (t.float() * t.float()).sum(1)
        self.allocator.register(Owner(res.collection.name, "", "index",
                                      f"{name}/centroid_norms"), sq)
        res.centroid_sq[name] = sq
        res.copied += _centroid_bytes(cent)

    def _growing_of(self, res: Resident, part: str) -> ResidentGrowing:
        """The partition's resident growing segment, or a new empty one (not yet attached:
        it holds no memory until rows are appended)."""
        rg = res.growing.get(part)
        if rg is None:
            coll = res.collection
            rg = ResidentGrowing(coll.name, part, coll.schema, res.fields, self.device,
                                 self.allocator)
        return rg

    def _load_growing(self, res: Resident, part: str, g: Any) -> None:
        rg = self._growing_of(res, part)
        if g.num_rows:
            rg.append(g.data(), g.deleted)
        res.growing[part] = rg

    # -- write path while loaded ----------------------------------------------------------
    def _on_event(self, res: Resident, event: str, *args: Any) -> None:
        coll = res.collection
        if event == "reserve":  # before the WAL: can the device take these rows?
            part, batch = args
            if part not in res.partitions:
                return
            need = self._growing_of(res, part).growth_bytes(batch)
            if need > self.allocator.free_bytes:
                raise InsufficientMemory(str(self.device), need, self.allocator.free_bytes,
                                         f"{batch.num_rows} new rows of {coll.name}")
            return
        if event == "insert":
            part, batch = args
            if part not in res.partitions:
                return
            rg = res.growing[part] = self._growing_of(res, part)
            rg.append(batch)
        elif event == "delete":
            seg, hit = args
            if isinstance(seg, SealedSegment):
                rs = res.segments.get(seg.id)
                if rs is not None:
                    rs.mark_deleted(hit)
            else:
                rg = res.growing.get(seg.partition)
                if rg is not None:
                    rg.mark_deleted(hit)
        elif event == "sealed":
            self._apply_seal(res, args[0])
        elif event == "trained":
            name, cent = args
            if name in res.fields:
                self._put_centroids(res, name, cent)

    def _apply_seal(self, res: Resident, new: list) -> None:
        """Move the rows a flush sealed from the resident growing buffers into resident
        sealed segments. The flush is durable already, so this never raises: the new
        segments' tensors are cut from the growing buffers, the growing buffers are freed,
        and only then are the segments registered, so a seal never needs the growing rows'
        bytes twice. If the device still cannot take them (1400), the resident copy is
        dropped whole (NotLoad, the error kept for take_load_error) rather than left
        stale: searches then say the collection is not loaded instead of answering from
        rows that no longer match the disk."""
        coll = res.collection
        staged = []
        for seg, g, live in new:
            rg = res.growing.get(seg.partition)
            if rg is None:
                continue
            dev_live = self.h2d.to_device(live)
            cols = {}
            for name in res.fields:
                col = rg.column(name)
                if isinstance(col, torch.Tensor):
                    valid = rg.valid.get(name)
                    cols[name] = (col[dev_live], None if valid is None else valid[dev_live])
                else:
                    cols[name] = (col.take(live.numpy()), None)
            staged.append((seg, cols))
        for part in list(res.growing):
            self.allocator.free(coll.name, part, "growing")
        res.growing.clear()
        try:
            for seg, cols in staged:
                rs = ResidentSegment(coll.name, seg.partition, str(seg.id), seg.num_rows,
                                     self.device, self.allocator)
                res.segments[seg.id] = rs
                for name, (col, valid) in cols.items():
                    if isinstance(col, torch.Tensor):
                        rs.put(name, col, valid)
                    else:
                        rs.put(name, col)
                rs.put_deleted(torch.zeros(seg.num_rows, dtype=torch.bool, device=self.device))
                if seg.ivf_field in res.fields:
                    rs.put_offsets(seg.ivf_field, self.h2d.to_device(seg.ivf_offsets))
        except MilvusException as e:
            self._drop(res)
            res.state = LoadState.NotLoad
            res.error = MilvusException(
                f"collection {coll.name} was released: after a flush its newly sealed rows "
                f"did not fit on the device ({e.message}). Its rows are safe on disk; load "
                "it again, with fewer fields or after releasing others", code=e.code)

    # -- a transient host copy ------------------------------------------------------------
    @staticmethod
    def snapshot(coll: Collection, fields: list[str], partitions: set[str]) -> Resident:
        """``fields`` of ``coll``'s rows in ``partitions`` (sealed and growing), copied into
        host memory for one operation on a collection that is not loaded (a delete by
        filter). It has an allocator of its own and no listener: nothing of it is counted
        as resident, and it is gone when the caller drops it. The caller holds the
        client's lock."""
        loader = Loader(DeviceAllocator(torch.device("cpu")), lock=None)
        res = Resident(coll, fields, None, False, set(partitions))
        for seg in coll.sealed:
            if seg.partition in partitions:
                loader._load_sealed(res, seg)
        for part, g in coll.growing.items():
            if part in partitions:
                loader._load_growing(res, part, g)
        res.state = LoadState.Loaded
        return res

    # -- release --------------------------------------------------------------------------
    def _drop(self, res: Resident) -> None:
        if res.collection.listener is not None:
            res.collection.listener = None
        res.segments.clear()
        res.growing.clear()
        res.centroids.clear()
        res.centroid_sq.clear()
        self.allocator.free(res.collection.name)

    def release(self, res: Resident) -> None:
        res.cancelled = True
        if res.state == LoadState.Loading:
            res.done.wait()
        self._drop(res)
        res.state = LoadState.NotLoad
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

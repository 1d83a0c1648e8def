"""Copying a collection to its device, and the LoadState machine of one resident copy.

load: plan (placement of each sealed segment on a device, bytes of every loaded field,
layout and trained index part) -> reserve all of it (a Reservation handle, or 1400) ->
copy part by part through the reservation, counting bytes for progress, and build each
sealed segment's scalar and JSON-path indexes from its resident columns (their bytes drawn
beyond the plan: they are known only once built) -> Loaded, and the
reservation is closed. Any failure (or a release while loading) frees everything the load
made resident and returns the copy to NotLoad. Load never writes to disk; residency.py
records the load intent and applies later writes to the copy.
"""
from __future__ import annotations

import atexit
import enum
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import torch

from .allocator import DeviceAllocator, Owner, Reservation
from .changes import Sealed
from .collection import Collection
from .columns import absent_column
from .errors import MilvusException, StorageError
from .index import registry, scalar
from .placement import place, roomiest
from .workers import Worker, Workers
from .resident import ResidentGrowing, ResidentSegment
from .segment import SealedSegment
from .storage.segments import (ShardRows, has_valid, read_arrow, read_tensor, shard_path,
                               shard_tensor)
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


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What a load will make resident: the worker of each sealed segment (placement), the
    bytes of everything it copies, and those bytes per worker (what it reserves on each)."""

    placement: dict[int, tuple[Worker, ...]]  # the first copy is the one searches prefer
    nbytes: int
    per_worker: dict[str, int]


@dataclass
class Resident:
    """A collection's resident copy and the configuration it was loaded with."""

    collection: Collection
    fields: list[str]            # loaded field names (schema order, plus $meta)
    load_fields: tuple | None    # as the user gave it, normalised (sorted) or None
    skip_dynamic: bool
    partitions: set[str]
    replica_number: int = 1      # copies of each sealed segment, on distinct workers
    segments: dict[int, ResidentSegment] = field(default_factory=dict)
    replicas: dict[int, list[ResidentSegment]] = field(default_factory=dict)  # the others
    growing: dict[str, ResidentGrowing] = field(default_factory=dict)
    index_parts: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # per field
    state: LoadState = LoadState.Loading
    plan: LoadPlan | None = None
    reservation: Reservation | None = None  # the coordinator's, open while the load copies
    reservations: dict[str, Reservation] = field(default_factory=dict)  # per worker
    copied: int = 0
    cancelled: bool = False
    replacing: bool = False      # a lost worker's segments are being placed again
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def planned(self) -> int:
        return 0 if self.plan is None else self.plan.nbytes

    @property
    def progress(self) -> int:
        if (self.state == LoadState.Loaded and not self.replacing) or self.planned == 0:
            return 100 if self.state == LoadState.Loaded else 0
        return min(99, int(100 * self.copied / self.planned))

    def copies(self, seg_id: int) -> list[ResidentSegment]:
        """Every resident copy of a sealed segment (none when it is not resident)."""
        first = self.segments.get(seg_id)
        return [] if first is None else [first, *self.replicas.get(seg_id, [])]

    def every_copy(self) -> list[ResidentSegment]:
        return [c for seg_id in list(self.segments) for c in self.copies(seg_id)]

    def forget_segment(self, seg_id: int) -> None:
        self.segments.pop(seg_id, None)
        self.replicas.pop(seg_id, None)

    def all_segments(self, partitions: set[str] | None = None,
                     growing: bool = True) -> list[ResidentSegment]:
        """One copy of each resident segment: with replicas, each call takes the next
        copy of every segment, so successive searches spread over the workers."""
        parts = self.partitions if partitions is None else partitions
        turn = self._turn = getattr(self, "_turn", -1) + 1
        segs: list[ResidentSegment] = []
        for seg_id, s in list(self.segments.items()):
            if s.partition in parts:
                copies = [s, *self.replicas.get(seg_id, [])]
                segs.append(copies[turn % len(copies)])
        if growing:
            segs += [g for p, g in self.growing.items() if p in parts and g.num_rows]
        return segs


class Loader:
    def __init__(self, workers: Workers, lock: Any) -> None:
        self.workers = workers
        self.allocator = workers.coordinator.allocator  # index parts and growing rows
        self.device = workers.coordinator.device
        self.lock = lock
        self._h2d: dict[torch.device, HostToDevice] = {}

    def h2d(self, device: torch.device) -> HostToDevice:
        if device not in self._h2d:
            self._h2d[device] = HostToDevice(device)
        return self._h2d[device]

    # -- planning -------------------------------------------------------------------------
    def _on_device(self, coll: Collection, name: str) -> bool:
        """Does this field's resident copy count against the device (Arrow columns live in
        host memory, which is the device only when the device is the CPU)?"""
        f = coll.schema.field(name)
        return self.device.type == "cpu" or (f is not None and f.is_fixed)

    @staticmethod
    def rows_place(coll: Collection, seg: SealedSegment, name: str) -> str:
        """Where a load keeps the field ``name`` of ``seg``: as its vector index says
        (``VectorIndex.rows_place``), "device" for every other field."""
        entry = coll.manifest.index_on(name)
        index = registry.find(entry["engine_type"]) if entry else None
        if index is None:
            return "device"
        return index.rows_place(entry["engine_params"], seg.layout_field == name)

    def _counts(self, coll: Collection, seg: SealedSegment, name: str) -> float:
        """The share of this field's bytes that counts against the device once loaded."""
        place = self.rows_place(coll, seg, name)
        if place == "device":
            return 1.0 if self._on_device(coll, name) else 0.0
        if place == "half":
            return 0.5
        return 1.0 if place == "host" and self.device.type == "cpu" else 0.0

    def segment_bytes(self, coll: Collection, seg: SealedSegment, fields: list[str]) -> int:
        meta = coll.segment_meta(seg.id)["bytes"]
        total = seg.num_rows + sum(int(meta.get(name, 0) * self._counts(coll, seg, name))
                                   for name in fields)
        if seg.layout_field in fields:
            total += seg.layout_nbytes()
        return total

    def plan(self, res: Resident, holds: bool = False) -> LoadPlan:
        """Bytes of every part and where each sealed segment goes (InsufficientMemory when
        it cannot be placed). ``holds``: the collection's present copy is dropped before
        this one is made (its bytes count as free)."""
        coll = res.collection
        central = 0  # on the coordinator: trained parts and growing rows
        for name, parts in coll.trained.items():
            if name in res.fields:
                central += coll.vector_index(name)[1].resident_bytes(parts)
        for part, g in coll.growing.items():
            if part in res.partitions and g.num_rows:
                central += ResidentGrowing.planned_bytes(coll.schema, res.fields, g.data(),
                                                         self.device.type == "cpu")
        sizes = {s.id: self.segment_bytes(coll, s, res.fields)
                 for s in coll.sealed if s.partition in res.partitions}
        ws = self.workers.sealed_holders
        if ws[0] is not self.workers.coordinator:  # the coordinator holds no sealed rows
            ws = [self.workers.coordinator, *ws]
        free = [w.free_bytes + (w.allocator.collection_info(coll.name)["bytes"] if holds
                                else 0) for w in ws]
        if ws[1:] and ws[1].remote:  # nothing sealed goes to the coordinator: its room
            if central > free[0]:    # is for the central parts alone
                place({}, free[:1], 1, [central], [ws[0].name], f"collection {coll.name}")
            ws_place, free_place, planned = ws[1:], free[1:], [0] * (len(ws) - 1)
        else:
            ws_place, free_place, planned = ws, free, [central] + [0] * (len(ws) - 1)
        placed = place(sizes, free_place, res.replica_number, planned,
                       [w.name for w in ws_place], f"collection {coll.name}"
                       if len(res.partitions) == len(coll.partitions)
                       else f"partitions {sorted(res.partitions)} of {coll.name}")
        per = {w.name: 0 for w in self.workers}
        per[ws[0].name] = central
        for seg_id, where in placed.items():
            for w in where:
                per[ws_place[w].name] += sizes[seg_id]
        return LoadPlan({seg_id: tuple(ws_place[w] for w in where)
                         for seg_id, where in placed.items()}, sum(per.values()), per)

    def reserve(self, res: Resident) -> None:
        """Reserve the plan on every worker, all or nothing (1400 and none held)."""
        held: dict[str, Reservation] = {}
        try:
            for w in self.workers:
                if self.workers.gone(w):  # a lost Ray worker: nothing is placed on it
                    continue
                held[w.name] = w.allocator.reserve(res.plan.per_worker[w.name],
                                                   f"collection {res.collection.name}")
        except BaseException:
            for r in held.values():
                r.close()
            raise
        res.reservations = held
        res.reservation = held[self.workers.coordinator.name]

    @staticmethod
    def close_reservations(res: Resident) -> None:
        for r in res.reservations.values():
            r.close()

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
        """Copy everything planned through the load's reservation; on any failure roll
        back. Runs in the caller's thread (sync load) or a background thread."""
        coll = res.collection
        try:
            self._acquire(res)
            try:
                todo = [s for s in coll.sealed if s.partition in res.partitions]
                trained = dict(coll.trained)
            finally:
                self.lock.release()
            for name, parts in trained.items():
                if name in res.fields:
                    self.put_index(res, name, parts)
            remote = self._remote_loads()
            for seg in todo:
                if res.cancelled:
                    raise LoadCancelled()
                if seg.partition not in res.partitions:
                    continue  # its partition was released while this load ran
                for i, w in enumerate(res.plan.placement[seg.id]):
                    self._load_copy(res, remote, seg, w, replica=i > 0)
                if seg.partition not in res.partitions:  # released while it was copied
                    self.drop_segment(res, seg)
                self._finish_remote(res, remote, wait=0)
            self._finish_all(res, remote)
            self._acquire(res)
            try:  # growing rows, segments sealed and rows deleted meanwhile
                if res.cancelled:
                    raise LoadCancelled()
                mine = [s for s in coll.sealed if s.partition in res.partitions]
                for seg in mine:
                    for rs in res.copies(seg.id):
                        rs.put_deleted(self.h2d(rs.device).to_device(seg.deleted.clone()))
                self.load_segments(res, [s for s in mine if s.id not in res.segments])
                for part, g in coll.growing.items():
                    if part in res.partitions:
                        self._load_growing(res, part, g)
                res.state = LoadState.Loaded
            finally:
                self.lock.release()
        except BaseException as e:  # roll back completely, whatever went wrong
            self.drop(res)
            res.error = e
            res.state = LoadState.NotLoad
            if not isinstance(e, (LoadCancelled, MilvusException, Exception)):
                raise
        finally:
            self.close_reservations(res)
            res.done.set()

    def drop_segment(self, res: Resident, seg: SealedSegment) -> None:
        res.forget_segment(seg.id)
        self.workers.free(res.collection.name, seg.partition, str(seg.id))

    def roomiest(self, need: int, copies: int = 1) -> list[Worker]:
        """Where a segment made resident after the load's plan goes (a seal, a refresh):
        the ``copies`` distinct workers with the most free bytes (the first listed, on a
        tie); 1400 naming each worker's free bytes when fewer have ``need``."""
        ws = self.workers.sealed_holders
        return [ws[i] for i in roomiest(need, [w.free_bytes for w in ws], copies,
                                        [w.name for w in ws])]

    def load_segments(self, res: Resident, segs: list[SealedSegment]) -> None:
        """Make more sealed segments of a Loaded collection resident (a refresh, segments
        sealed while it loaded, a lost worker's segments re-placed): each segment's copies
        reserved on the roomiest workers as they stand after the segments before it, then
        read from disk, Ray workers' all started at once. On failure none of them stays."""
        held: list[Any] = []
        try:
            placed = []
            for seg in segs:
                need = self.segment_bytes(res.collection, seg, res.fields)
                for i, w in enumerate(self.roomiest(need, res.replica_number)):
                    held.append(w.allocator.reserve(
                        need, f"segment {seg.id} of {res.collection.name}"))
                    placed.append((seg, w, held[-1], i > 0))
            remote = self._remote_loads()
            for seg, w, budget, replica in placed:
                self._load_copy(res, remote, seg, w, replica, budget)
            self._finish_all(res, remote)
        except BaseException:
            for seg in segs:  # a Ray worker runs calls in order: its loads end before this
                self.drop_segment(res, seg)
            raise
        finally:
            for r in held:
                r.close()

    def _acquire(self, res: Resident) -> None:
        if not self.lock.acquire(abandon=lambda: res.cancelled):  # a release may hold it
            raise LoadCancelled()

    def _load_sealed(self, res: Resident, seg: SealedSegment, budget: Reservation | None = None,
                     worker: Worker | None = None, indexes: bool = True,
                     replica: bool = False) -> None:
        coll = res.collection
        seg_dir = coll.segment_dir(seg.id)
        worker = worker or self.workers.coordinator
        if budget is None:
            budget = res.reservations.get(worker.name, res.reservation)
        if worker.remote:
            return self._load_remote(res, seg, budget, worker, replica)
        device = worker.device
        h2d = self.h2d(device)
        rs = ResidentSegment(coll.name, seg.partition, str(seg.id), seg.num_rows,
                             device, worker.allocator, budget)
        if replica:
            res.replicas.setdefault(seg.id, []).append(rs)
        else:
            res.segments[seg.id] = rs
        sizes = coll.segment_meta(seg.id)["bytes"]

        def copied(n: int) -> None:
            res.copied += n

        def cancelled() -> bool:
            return res.cancelled

        for name in res.fields:
            f = coll.schema.field(name)
            if name not in sizes:
                if f is not None:  # added after this segment was sealed: default or null
                    col, valid = absent_column(f, seg.num_rows)
                    if isinstance(col, torch.Tensor):
                        col = h2d.to_device(col)
                        valid = None if valid is None else h2d.to_device(valid)
                    rs.put(name, col, valid)
                continue
            fixed = f is not None and f.is_fixed
            stem, sums = coll.stems[name], coll.file_sums(seg.id, name, fixed)
            try:
                place = self.rows_place(coll, seg, name)
                if not fixed:
                    arr = read_arrow(seg_dir, stem, sums)
                else:
                    if place == "device" or (place == "host" and device.type == "cpu"):
                        t = h2d.load(seg_dir, stem, on_bytes=copied, cancelled=cancelled,
                                     sums=sums)
                    else:
                        t = self._placed(coll, seg, name, place, rs, h2d)
                    v = None
                    if f.nullable and has_valid(seg_dir, stem):
                        v = h2d.load(seg_dir, stem, "valid", copied, cancelled, sums)
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
        rs.put_deleted(h2d.to_device(seg.deleted.clone()))
        res.copied += seg.num_rows
        if seg.layout_field in res.fields:
            self._put_layout(res, rs, seg)
        if indexes:
            self._build_layouts(res, rs)
            self.put_scalar_indexes(res, rs)

    def _load_remote(self, res: Resident, seg: SealedSegment, budget: Any, worker: Worker,
                     replica: bool) -> None:
        """A sealed segment read from the data directory by the Ray worker ``worker``
        itself, waited for; the coordinator keeps a ``RemoteSegment`` for it."""
        remote = self._remote_loads()
        self._start_remote(res, remote, seg, worker, replica, budget)
        self._finish_all(res, remote)
        if res.cancelled:
            raise LoadCancelled()

    def _load_copy(self, res: Resident, remote: Any, seg: SealedSegment, worker: Worker,
                   replica: bool, budget: Any = None) -> None:
        """One copy of a sealed segment onto ``worker``: read here, or started on a Ray
        worker, which reads it while the others read theirs (``_finish_all`` collects)."""
        if worker.remote:
            self._start_remote(res, remote, seg, worker, replica, budget)
        else:
            self._load_sealed(res, seg, budget, worker, replica=replica)

    def _finish_all(self, res: Resident, remote: Any) -> None:
        """Wait for every load started on Ray workers, stopping at a release."""
        while remote is not None and remote.pending:
            if res.cancelled:
                raise LoadCancelled()
            self._finish_remote(res, remote, wait=0.1)

    def _remote_loads(self) -> Any:
        """Where loads on Ray workers are started and collected (None without them)."""
        if not any(w.remote for w in self.workers):
            return None
        from .cluster import RemoteLoads

        return RemoteLoads()

    def _start_remote(self, res: Resident, remote: Any, seg: SealedSegment, worker: Worker,
                      replica: bool, budget: Any = None) -> None:
        from .cluster import files_for

        if budget is None:
            budget = res.reservations.get(worker.name, res.reservation)
        remote.start(files_for(worker, res.collection), res.fields, seg,
                     getattr(budget, "token", None), worker, replica)

    def _finish_remote(self, res: Resident, remote: Any, wait: float | None) -> None:
        """Keep a ``RemoteSegment`` for each load a Ray worker has finished (waiting up
        to ``wait`` seconds for one), counted in the load's progress."""
        from .cluster import RemoteSegment

        for seg, worker, replica, name in remote.finished(wait) if remote else []:
            rs = RemoteSegment(worker, name, seg, self.device)
            if replica:
                res.replicas.setdefault(seg.id, []).append(rs)
            else:
                res.segments[seg.id] = rs
            res.copied += self.segment_bytes(res.collection, seg, res.fields)
            if seg.partition not in res.partitions:  # released while it was read
                self.drop_segment(res, seg)

    def _placed(self, coll: Collection, seg: SealedSegment, name: str, place: str,
                rs: ResidentSegment, h2d: HostToDevice, rows: torch.Tensor | None = None
                ) -> Any:
        """A vector column kept otherwise than as stored (``rows_place``), from ``rows``
        (cut from the growing buffers) or read from the shard: left on disk ("disk"), in
        host memory, pinned for the refine gathers ("host"), or on the device in float16
        ("half"). Where the scanned copy is not the stored rows, reads that return the
        vector take them from the shard (``rs.exact``)."""
        seg_dir, stem = coll.segment_dir(seg.id), coll.stems[name]
        sums = coll.file_sums(seg.id, name)
        if place in ("disk", "half"):  # reads of the vector come from the shard
            on_disk = ShardRows(shard_tensor(seg_dir, stem, sums=sums), coll.name,
                                f"field {name} of segment {seg.id}")
            if place == "disk":
                return on_disk
            rs.exact[name] = on_disk
        if rows is None:
            rows = read_tensor(seg_dir, stem, sums=sums)
        if place == "half":
            return h2d.to_device(rows.to(torch.float16))
        rows = rows.cpu()
        return rows.pin_memory() if torch.cuda.is_available() else rows

    def _put_layout(self, res: Resident, rs: ResidentSegment, seg: SealedSegment) -> None:
        entry, index = res.collection.vector_index(seg.layout_field)
        layout = {k: self.h2d(rs.device).to_device(t) for k, t in seg.layout_tensors().items()}
        res.copied += sum(t.numel() * t.element_size() for t in layout.values())
        layout = index.resident_layout(layout, rs.column(seg.layout_field),
                                       entry["metric_type"], rs.device)
        rs.put_layout(seg.layout_field, layout, index.part_labels)

    @staticmethod
    def _build_layouts(res: Resident, rs: ResidentSegment) -> None:
        """Layouts built from a resident segment's rows (the sparse postings), their bytes
        drawn from the segment's budget."""
        for d in res.collection.manifest.indexes:
            index = registry.find(d["engine_type"])
            if index is not None and index.builds_layout and d["field_name"] in res.fields:
                layout = index.build_layout(rs.column(d["field_name"]), d["engine_params"],
                                            rs.device)
                rs.put_layout(d["field_name"], layout, index.part_labels)

    @staticmethod
    def scalar_targets(res: Resident, entries: list[dict] | None = None
                       ) -> list[tuple[str, scalar.Target]]:
        """(index name, target) of the scalar and JSON-path indexes in ``entries`` (the
        manifest's by default) that cover a loaded field and hold something."""
        schema = res.collection.schema
        out = []
        for d in res.collection.manifest.indexes if entries is None else entries:
            f = schema.field(d["field_name"])
            if f is not None and f.is_vector:
                continue
            t = scalar.target(d, schema)
            if t.kind != "none" and t.field in res.fields:
                out.append((d["index_name"], t))
        return out

    def put_scalar_indexes(self, res: Resident, rs: ResidentSegment) -> None:
        """Build a resident sealed segment's scalar and JSON-path indexes (parts
        ``index/<name>``, drawn from the segment's budget)."""
        for name, t in self.scalar_targets(res):
            rs.put_index(name, t, scalar.build(t, rs))

    def put_index(self, res: Resident, name: str, trained: dict[str, torch.Tensor]) -> None:
        """Make a vector field's trained index parts resident (parts ``<field>/<part>``)."""
        index = res.collection.vector_index(name)[1]
        parts = index.resident_parts(trained, self.device)
        budget = res.reservation or self.allocator
        for part, t in parts.items():
            budget.register(Owner(res.collection.name, "", "index", f"{name}/{part}"), t)
        res.index_parts[name] = parts
        res.copied += index.resident_bytes(trained)

    def growing_of(self, res: Resident, part: str) -> ResidentGrowing:
        """The partition's resident growing segment, or a new empty one (not yet attached:
        it holds no memory until rows are appended)."""
        rg = res.growing.get(part)
        if rg is None:
            coll = res.collection
            rg = ResidentGrowing(coll.name, part, coll.schema, res.fields, self.device,
                                 self.allocator)
        return rg

    def _load_growing(self, res: Resident, part: str, g: Any) -> None:
        rg = self.growing_of(res, part)
        if g.num_rows:
            rg.append(g.data(), g.deleted, budget=res.reservation)
        res.growing[part] = rg

    # -- a flush while resident -----------------------------------------------------------
    def apply_seal(self, res: Resident, sealed: Sealed) -> None:
        """Move the rows a flush sealed from the resident growing buffers into resident
        sealed segments. The new segments' tensors are cut from the growing buffers, the
        growing buffers are freed, and only then are the segments registered, so a seal
        never needs the growing rows' bytes twice. Raises (1400) when the device still
        cannot take them; the caller then reloads the copy from disk."""
        coll = res.collection
        staged = []
        for seg, live in sealed.segments:
            rg = res.growing.get(seg.partition)
            if rg is None:
                continue
            dev_live = self.h2d(rg.device).to_device(live)
            cols = {}
            for name in res.fields:
                col = rg.column(name)
                if isinstance(col, torch.Tensor):
                    valid = rg.valid.get(name)
                    cols[name] = (col[dev_live], None if valid is None else valid[dev_live])
                else:
                    cols[name] = (col.take(live.numpy()), None)
            staged.append((seg, rg.device, cols))
        for part in list(res.growing):
            self.allocator.free(coll.name, part, "growing")
        res.growing.clear()
        for seg, device, cols in staged:
            worker = self.roomiest(self.segment_bytes(coll, seg, res.fields))[0]
            if worker.remote:  # read from the segment just written, by the worker
                with worker.allocator.reserve(self.segment_bytes(coll, seg, res.fields),
                                              f"segment {seg.id} of {coll.name}") as r:
                    self._load_sealed(res, seg, r, worker)
                if res.replica_number > 1:
                    self.replicate(res, seg, worker)
                continue
            if worker.device != device:  # sealed rows leave the coordinator
                cols = {name: tuple(t.to(worker.device) if isinstance(t, torch.Tensor) else t
                                    for t in pair) for name, pair in cols.items()}
                device = worker.device
            rs = ResidentSegment(coll.name, seg.partition, str(seg.id), seg.num_rows,
                                 device, worker.allocator)
            res.segments[seg.id] = rs
            for name, (col, valid) in cols.items():
                place = self.rows_place(coll, seg, name)
                if place in ("disk", "half") or (place == "host" and device.type != "cpu"):
                    col = self._placed(coll, seg, name, place, rs, self.h2d(device), col)
                if isinstance(col, torch.Tensor):
                    rs.put(name, col, valid)
                else:
                    rs.put(name, col)
            rs.put_deleted(torch.zeros(seg.num_rows, dtype=torch.bool, device=device))
            if seg.layout_field in res.fields:
                self._put_layout(res, rs, seg)
            self._build_layouts(res, rs)
            self.put_scalar_indexes(res, rs)
            if res.replica_number > 1:  # the other copies from the segment just written
                self.replicate(res, seg, worker)

    def replicate(self, res: Resident, seg: SealedSegment, first: Worker) -> None:
        """The replicas of a segment whose first copy is on ``first``, read from disk onto
        the roomiest other workers."""
        need = self.segment_bytes(res.collection, seg, res.fields)
        others = [w for w in self.workers.sealed_holders if w is not first]
        for i in roomiest(need, [w.free_bytes for w in others], res.replica_number - 1,
                          [w.name for w in others]):
            w = others[i]
            with w.allocator.reserve(need, f"segment {seg.id} of {res.collection.name}") as r:
                self._load_sealed(res, seg, r, w, replica=True)

    # -- a transient host copy ------------------------------------------------------------
    @staticmethod
    def snapshot(coll: Collection, fields: list[str], partitions: set[str]) -> Resident:
        """``fields`` of ``coll``'s rows in ``partitions`` (sealed and growing), copied into
        host memory for one operation on a collection that is not loaded (a delete by
        filter). It has an allocator of its own: nothing of it is counted as resident, and
        it is gone when the caller drops it. The caller holds the database's lock."""
        loader = Loader(Workers([Worker("cpu", DeviceAllocator(torch.device("cpu")))]),
                        lock=None)
        res = Resident(coll, fields, None, False, set(partitions))
        for seg in coll.sealed:
            if seg.partition in partitions:
                loader._load_sealed(res, seg, indexes=False)
        for part, g in coll.growing.items():
            if part in partitions:
                loader._load_growing(res, part, g)
        res.state = LoadState.Loaded
        return res

    # -- release --------------------------------------------------------------------------
    def drop(self, res: Resident) -> None:
        res.segments.clear()
        res.replicas.clear()
        res.growing.clear()
        res.index_parts.clear()
        self.workers.free(res.collection.name)

    def release(self, res: Resident) -> None:
        res.cancelled = True
        if res.state == LoadState.Loading:
            res.done.wait()
        self.drop(res)
        res.state = LoadState.NotLoad
        if self.device.type == "cuda":
            for w in self.workers:
                torch.cuda.synchronize(w.device)
            torch.cuda.empty_cache()


"""Residency: which collections and partitions are loaded, as a service.

It owns the resident copies (``Resident``, one per loaded collection), their load state,
the errors of loads that failed in the background, and the persisted load intent. Load,
release, partial loads and partition surgery are decided here; the copying is
``loader.py``'s. Writes reach a resident copy one way: storage returns change records
after its durable step and ``apply`` applies them. If applying fails, the copy is stale:
it is dropped and loaded again from disk (or, if that does not fit, left NotLoad with the
error kept), never left wrong.

The caller (the database) holds its lock around every call; ``finish`` waits for a load
outside it.
"""
from __future__ import annotations

import threading
from typing import Any

from .allocator import Reservation
from .changes import Change, Deleted, Inserted, Rewritten, Sealed, Trained
from .collection import Collection
from .columns import Batch, without_replaced
from .errors import (CollectionNotLoaded, FieldNotFound, IndexNotFound, InsufficientMemory,
                     MilvusException, ParamError, PartitionNotFound, PartitionNotLoaded,
                     WriteFailed)
from .loader import Loader, LoadPlan, LoadState, Resident
from .names import check_names
from .index import scalar
from .resident import device_bytes, loaded_names
from .segment import SealedSegment
from .storage.manifest import NOT_LOADED, LoadIntent
from .workers import Workers


class Residency:
    def __init__(self, workers: Workers, lock: Any) -> None:
        self.workers = workers
        self.allocator = workers.coordinator.allocator  # growing rows and index parts
        self.lock = lock
        self.loader = Loader(workers, lock)
        self._resident: dict[str, Resident] = {}
        self._errors: dict[str, MilvusException] = {}

    # -- lookups --------------------------------------------------------------------------
    def get(self, name: str) -> Resident | None:
        return self._resident.get(name)

    def loaded(self, coll: Collection) -> Resident:
        """The collection's resident copy, Loaded (else 101, with progress while loading)."""
        res = self._resident.get(coll.name)
        if res is not None and (res.state == LoadState.Loading or res.replacing):
            raise CollectionNotLoaded(coll.name, loading=res.progress)
        if res is None or res.state != LoadState.Loaded:
            raise CollectionNotLoaded(coll.name)
        return res

    def loaded_fields(self, coll: Collection) -> list[str]:
        res = self._resident.get(coll.name)
        return res.fields if res is not None else coll.schema.names

    @staticmethod
    def searched_partitions(res: Resident, names: list[str] | None) -> set[str]:
        if not names:
            return set(res.partitions)
        names = check_names("partition", names)
        for p in names:
            if p not in res.collection.partitions:
                raise PartitionNotFound(p)
            if p not in res.partitions:
                raise PartitionNotLoaded(p)
        return set(names)

    # -- load -----------------------------------------------------------------------------
    def restore(self, coll: Collection) -> None:
        """Start the load the collection's persisted intent asks for, in the background.
        One that does not fit leaves it NotLoad with the error kept (take_error)."""
        intent = coll.manifest.load
        if intent.loaded:
            try:
                self._start(coll, intent.load_fields, intent.skip_dynamic,
                            intent.partitions, _async=True, replicas=intent.replicas)
            except MilvusException as e:
                self._errors[coll.name] = e

    def check_load_fields(self, coll: Collection, load_fields: Any) -> tuple | None:
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
        for f in coll.schema.vector_fields:
            if f.name in names and coll.manifest.index_on(f.name) is None:
                raise IndexNotFound(coll.name, f"vector field {f.name} has no index")
        return fields

    def load(self, coll: Collection, load_fields: Any, skip_dynamic: bool,
             replica_number: int, _async: bool) -> Resident:
        """Load all partitions (or expand a partial load to all); returns the copy to
        ``finish``."""
        fields = self.check_load_fields(coll, load_fields)
        self.forget_if_failed(coll)
        res = self._resident.get(coll.name)
        replicas = check_replicas(replica_number, self.workers)
        if res is not None and res.replica_number != replicas:
            raise ParamError("can't change the replica number for loaded collection: "
                             "release it first")
        if res is not None:
            if res.load_fields != fields or res.skip_dynamic != skip_dynamic:
                raise ParamError("can't change the load field list for loaded collection: "
                                 "release the collection first, then load with the new "
                                 "field list")
            if res.partitions == set(coll.partitions):
                return res
            return self._expand(coll, res, set(coll.partitions), None)
        return self._start(coll, fields, skip_dynamic, None, _async, replicas)

    def load_partitions(self, coll: Collection, names: list[str], load_fields: Any,
                        skip_dynamic: bool, replica_number: Any = 1) -> Resident:
        for p in names:
            if p not in coll.partitions:
                raise PartitionNotFound(p)
        fields = self.check_load_fields(coll, load_fields)
        replicas = check_replicas(replica_number, self.workers)
        self.forget_if_failed(coll)
        res = self._resident.get(coll.name)
        wanted = set(names)
        if res is None:
            return self._start(coll, fields, skip_dynamic, sorted(wanted), _async=False,
                               replicas=replicas)
        if res.replica_number != replicas and replica_number not in (None, 1):
            raise ParamError("can't change the replica number for loaded collection: "
                             "release it first")
        if res.load_fields != fields and load_fields is not None:
            raise ParamError("can't change the load field list for loaded collection: "
                             "release the collection first")
        if wanted <= res.partitions:
            return res
        return self._expand(coll, res, wanted | res.partitions, sorted(wanted | res.partitions))

    def _expand(self, coll: Collection, res: Resident, partitions: set[str],
                listed: list[str] | None) -> Resident:
        """Load more partitions of a loaded collection, all or nothing: the bigger load is
        planned first and refused (1400, what is loaded stays loaded) unless it fits in
        what is free plus what the collection holds now; then the copy is reloaded."""
        bigger = Resident(coll, res.fields, res.load_fields, res.skip_dynamic, partitions,
                          res.replica_number)
        self.loader.plan(bigger, holds=True)  # 1400 unless it fits once the copy is dropped
        fields, skip = res.load_fields, res.skip_dynamic
        self._drop(coll.name)
        return self._start(coll, fields, skip, listed, _async=False,
                           replicas=bigger.replica_number)

    def _start(self, coll: Collection, fields: Any, skip_dynamic: bool,
               partitions: Any, _async: bool, replicas: int = 1) -> Resident:
        fields = tuple(fields) if fields else None
        names = loaded_names(coll.schema, list(fields) if fields else None, skip_dynamic)
        parts = set(partitions) if partitions else set(coll.partitions)
        res = Resident(coll, names, fields, skip_dynamic, parts, replicas)
        res.plan = self.loader.plan(res)
        self.loader.reserve(res)
        self._resident[coll.name] = res
        try:  # a restored load has its intent already: nothing is written
            coll.set_load_intent(LoadIntent(True, fields, skip_dynamic,
                                            tuple(sorted(parts)) if partitions else None,
                                            replicas))
        except WriteFailed:
            del self._resident[coll.name]
            self.loader.close_reservations(res)
            raise
        if _async:
            self.loader.start(res)
        else:
            self.loader.run(res)
        return res

    def load_intended(self, coll: Collection) -> None:
        """Load the collection as its persisted intent says, now (after a truncate or a
        rename replaced what was resident)."""
        intent = coll.manifest.load
        if intent.loaded:
            self.finish(self._start(coll, intent.load_fields, intent.skip_dynamic,
                                    intent.partitions, _async=False,
                                    replicas=intent.replicas))

    def finish(self, res: Resident) -> None:
        """Wait for a load (outside the lock); raise its error after forgetting it."""
        res.done.wait()
        if res.error is not None:
            err = res.error
            with self.lock:
                self._forget_failed(res)
            if isinstance(err, MilvusException):
                raise err
            raise MilvusException(f"load of {res.collection.name} failed: {err}") from err

    def _forget_failed(self, res: Resident) -> None:
        """A load that failed leaves nothing behind: not resident, intent not loaded. The
        error is kept for ``take_error`` (how a background load reports failure)."""
        name = res.collection.name
        if self._resident.get(name) is res:
            self.release(res.collection)
            if isinstance(res.error, MilvusException):
                self._errors[name] = res.error

    def take_error(self, name: str) -> MilvusException | None:
        res = self._resident.get(name)
        if res is not None and res.state == LoadState.NotLoad and res.done.is_set():
            self._forget_failed(res)
        return self._errors.pop(name, None)

    def refresh(self, coll: Collection) -> None:
        res = self.loaded(coll)
        self.loader.load_segments(res, [s for s in coll.adopt_new_segments()
                                        if s.partition in res.partitions])

    # -- release --------------------------------------------------------------------------
    def _drop(self, name: str) -> None:
        res = self._resident.pop(name, None)
        if res is not None:
            self.loader.release(res)

    def release(self, coll: Collection, persist: bool = True) -> None:
        self._drop(coll.name)
        if persist:
            coll.set_load_intent(NOT_LOADED)

    def release_partitions(self, coll: Collection, names: list[str]) -> None:
        res = self._resident.get(coll.name)
        if res is None:
            return
        keep = res.partitions - set(names)
        if not keep:
            self.release(coll)
            return
        coll.set_load_intent(LoadIntent(True, res.load_fields, res.skip_dynamic,
                                        tuple(sorted(keep)), res.replica_number))
        res.partitions = keep  # a background load stops copying them from here on
        for p in set(names) - keep:
            # in place: a background load may be adding segments of kept partitions
            for seg_id in [k for k, s in list(res.segments.items()) if s.partition == p]:
                res.forget_segment(seg_id)
            res.growing.pop(p, None)
            self.workers.free(coll.name, p)

    def partition_added(self, coll: Collection, name: str) -> None:
        res = self._resident.get(coll.name)
        if res is not None and coll.manifest.load.partitions is None:
            res.partitions.add(name)  # a fully loaded collection stays full

    def close(self) -> None:
        for name in list(self._resident):
            self._drop(name)  # the persisted intent stays

    # -- states ---------------------------------------------------------------------------
    def failed(self, coll: Collection) -> bool:
        """Whether the collection's background load has failed and is not forgotten yet."""
        res = self._resident.get(coll.name)
        return res is not None and res.done.is_set() and res.state == LoadState.NotLoad

    def forget_if_failed(self, coll: Collection) -> None:
        """Forget a failed background load (the caller holds the lock alone)."""
        if self.failed(coll):
            self._forget_failed(self._resident[coll.name])

    def state(self, coll: Collection, partition: str) -> dict:
        """Milvus's load state of a collection or one of its partitions (the caller holds
        the lock, shared is enough: a failed load reads as NotLoad and changes nothing)."""
        if partition and partition not in coll.partitions:
            return {"state": LoadState.NotExist}
        res = self._resident.get(coll.name)
        if res is None or (partition and partition not in res.partitions):
            return {"state": LoadState.NotLoad}
        if res.state == LoadState.Loading or res.replacing:
            return {"state": LoadState.Loading, "progress": res.progress}
        if res.state == LoadState.Loaded:
            return {"state": LoadState.Loaded}
        return {"state": LoadState.NotLoad}

    # -- a lost worker --------------------------------------------------------------------
    def worker_lost(self, name: str) -> None:
        """A Ray worker died (found by a call to it; the caller holds the lock). Its
        copies are forgotten; a segment with a copy elsewhere is served from it at once;
        the others are read again from disk onto the live workers in the background, the
        collection showing Loading with progress meanwhile (reads answer 101 then, never
        a result without them). Deletes made meanwhile are on disk and come with them."""
        w = self.workers.by_name(name)
        if w is None:
            return
        w.root.dead = True
        for res in list(self._resident.values()):
            if res.replacing or res.state != LoadState.Loaded:
                continue
            lost = []
            for seg_id in list(res.segments):
                live = [rs for rs in res.copies(seg_id)
                        if getattr(rs, "worker", None) is None or rs.worker.name != name]
                if len(live) == len(res.copies(seg_id)):
                    continue
                if live:
                    res.segments[seg_id] = live[0]
                    res.replicas[seg_id] = live[1:]
                else:
                    res.forget_segment(seg_id)
                    lost.append(seg_id)
            if lost:
                self._replace(res, [s for s in res.collection.sealed if s.id in lost])

    def _replace(self, res: Resident, segs: list[SealedSegment]) -> None:
        coll = res.collection
        res.replacing, res.copied = True, 0
        res.plan = LoadPlan({}, sum(self.loader.segment_bytes(coll, s, res.fields)
                                    for s in segs), {})

        def body() -> None:
            try:
                self.loader.load_segments(res, segs)
                with self.lock:
                    for seg in segs:  # deletes applied while it was read
                        for rs in res.copies(seg.id):
                            rs.put_deleted(seg.deleted.clone())
                    res.replacing = False
            except Exception as e:  # noqa: BLE001 - kept for the next call to say
                with self.lock:
                    self._drop(coll.name)
                    msg = e.message if isinstance(e, MilvusException) else str(e)
                    self._errors[coll.name] = MilvusException(
                        f"collection {coll.name} was released: a worker was lost and its "
                        f"segments could not be placed on the others ({msg}); its rows are "
                        "safe on disk: load it again once there is room", code=getattr(
                            e, "code", 65535))

        threading.Thread(target=body, daemon=True,
                         name=f"hotset-replace-{coll.name}").start()

    # -- writes ---------------------------------------------------------------------------
    def room_for(self, coll: Collection, partition: str, batch: Batch | None) -> Reservation:
        """Reserve the device bytes a write's rows will take in the resident copy, before
        the write is logged (1400 and nothing written if they do not fit)."""
        res = self._resident.get(coll.name)
        need = 0
        if batch is not None and res is not None and res.state == LoadState.Loaded \
                and partition in res.partitions:
            need = self.loader.growing_of(res, partition).growth_bytes(without_replaced(batch))
        if need > self.allocator.free_bytes:
            raise InsufficientMemory(str(self.allocator.device), need, self.allocator.free_bytes,
                                     f"{batch.num_rows} new rows of {coll.name}")
        return self.allocator.reserve(need, f"new rows of {coll.name}")

    def apply(self, coll: Collection, changes: list[Change],
              budget: Reservation | None = None) -> None:
        """Apply storage's change records to the resident copy, if it is Loaded. A copy
        still loading picks them up itself before it is Loaded."""
        res = self._resident.get(coll.name)
        if res is None or res.state != LoadState.Loaded or not changes:
            return
        if any(isinstance(c, Rewritten) for c in changes):  # the segments on disk changed
            self._reload(coll, res, "its segments were compacted")
            return
        try:
            for change in changes:
                self._apply(res, change, budget)
        except Exception as e:  # noqa: BLE001 - whatever it was, the copy is stale now
            if budget is not None:
                budget.close()  # its bytes go back before the reload plans
            self._reload(coll, res, "a write's rows could not be made resident "
                                    f"({getattr(e, 'message', e)})")

    def _apply(self, res: Resident, change: Change, budget: Reservation | None) -> None:
        if isinstance(change, Inserted):
            if change.partition in res.partitions:
                rg = res.growing[change.partition] = self.loader.growing_of(res, change.partition)
                rg.append(change.batch, budget=budget)
        elif isinstance(change, Deleted):
            seg = change.segment
            if isinstance(seg, SealedSegment):
                targets = res.copies(seg.id)
            else:
                targets = [t for t in (res.growing.get(seg.partition),) if t is not None]
            for target in targets:
                target.mark_deleted(change.hit)
        elif isinstance(change, Sealed):
            self.loader.apply_seal(res, change)
        elif isinstance(change, Trained):
            if change.field in res.fields:
                self.loader.put_index(res, change.field, change.parts)

    def stage_indexes(self, coll: Collection, entries: list[dict]) -> "StagedIndexes":
        """Build new scalar and JSON-path indexes on the resident sealed segments of a
        Loaded collection and reserve their bytes (1400 if they do not fit, before the
        index is saved). A copy still loading builds them as it loads each later segment."""
        res = self._resident.get(coll.name)
        if res is None or res.state != LoadState.Loaded:
            return StagedIndexes([], {})
        targets = self.loader.scalar_targets(res, entries)
        built = [(rs, name, t, scalar.build(t, rs)) for rs in res.every_copy()
                 if not getattr(rs, "remote", False) for name, t in targets]
        staged = StagedIndexes(built, {})
        if targets:  # Ray workers build theirs once the index is saved
            staged.remote = [(w, coll, entries) for w in self.workers if w.remote]
        try:  # each worker reserves what its segments' indexes take, all or nothing
            for w in self.workers:
                if w.remote:
                    continue
                need = sum(device_bytes(o, rs.device) for rs, _, _, b in built
                           if rs.allocator is w.allocator for o in scalar.objects_of(b))
                staged.reservations[w.name] = w.allocator.reserve(
                    need, f"new indexes of {coll.name}")
        except BaseException:
            staged.__exit__()
            raise
        return staged

    def _reload(self, coll: Collection, res: Resident, why: str) -> None:
        """The resident copy no longer matches the disk (``why``): drop it and load it
        again, with the same configuration. If that fails, the collection is NotLoad and
        the error is kept for take_error."""
        self._drop(coll.name)
        intent = coll.manifest.load
        try:
            self._start(coll, res.load_fields, res.skip_dynamic, intent.partitions,
                        _async=False, replicas=res.replica_number)
            failed = self._resident[coll.name].error
        except MilvusException as e:
            failed = e
        if failed is None:
            return
        self._resident.pop(coll.name, None)
        msg = failed.message if isinstance(failed, MilvusException) else str(failed)
        code = failed.code if isinstance(failed, MilvusException) else 65535
        self._errors[coll.name] = MilvusException(
            f"collection {coll.name} was released: {why} and a reload did not succeed "
            f"({msg}). "
            "Its rows are safe on disk; load it again, with fewer fields or after releasing "
            "others", code=code)
        try:
            coll.set_load_intent(NOT_LOADED)
        except WriteFailed:
            pass  # the intent restores the load at the next open, which is harmless


def check_replicas(replica_number: Any, workers: Workers) -> int:
    """A load's replica_number (None or 0: 1), checked against the workers that hold
    sealed segments."""
    n = 1 if replica_number in (None, 0) else replica_number
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParamError(f"replica_number must be a positive integer, got {replica_number!r}")
    holders = workers.sealed_holders
    if n > len(holders):
        raise ParamError(f"replica_number={n} needs that many workers; this engine serves "
                         f"sealed segments from {len(holders)} "
                         f"({', '.join(w.name for w in holders)}): start it with more "
                         "devices or workers, or load with fewer replicas")
    return n


class StagedIndexes:
    """Indexes built for resident segments, with their bytes reserved on each segment's
    worker: ``commit`` makes them resident once the index is saved; leaving the ``with``
    block returns what is left."""

    def __init__(self, built: list, reservations: dict[str, Reservation]) -> None:
        self.built, self.reservations = built, reservations
        self.remote: list = []  # (Ray worker, collection, index entries)

    def commit(self) -> None:
        by_allocator = {id(r.allocator): r for r in self.reservations.values()}
        for rs, name, t, b in self.built:
            rs.put_index(name, t, b, by_allocator.get(id(rs.allocator)))
        for w, coll, entries in self.remote:
            from .cluster import _call, files_for

            files = files_for(w, coll)
            _call(w.root.actor.add_indexes, files.name, files, entries)

    def __enter__(self) -> "StagedIndexes":
        return self

    def __exit__(self, *exc: Any) -> None:
        for r in self.reservations.values():
            r.close()

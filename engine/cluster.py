"""Workers as Ray actors: sealed segments served from other processes and machines.

A ``RayWorker`` actor owns one device (``num_gpus=1`` on a GPU cluster, the CPU in tests)
and a ``DeviceAllocator`` of its own. It reads the sealed segments placed on it from the
data directory itself (``FilesSnapshot``: every node must see the directory at the same
path, a shared filesystem), builds their layouts and scalar indexes, and answers the
per-segment steps of a read: scan (the coordinator's probe, filter and limit; top-k back),
matching rows, count, primary keys, output fields; deletes reach it as they are applied.

On the coordinator, ``ray_workers`` gives the ``Worker``s (their allocators are
``RemoteAllocator`` proxies: reserve, free, report) and ``RemoteSegment`` stands in for a
segment held by an actor. Reservations are taken on every worker before a load copies
anything, as on local workers, so a load that does not fit is refused whole (1400).

Ray is an optional dependency (``pip install 'hotset[cluster]'``), imported here only.
"""
from __future__ import annotations

import fcntl
import itertools
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from .allocator import DeviceAllocator, Reservation
from .collection_files import FilesSnapshot
from .device import resolve_device
from .errors import MilvusException, ParamError, WorkerLost
from .loader import Loader, Resident
from .segment import SealedSegment
from .workers import Worker, Workers


log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ParamError("Ray workers need Ray: pip install 'hotset[cluster]' "
                         f"(import failed: {e})") from None
    return ray


class RayWorker:
    """The actor's body (made a Ray actor class by ``ray_workers``)."""

    def __init__(self, name: str, device: str, memory_limit: int | None,
                 threads: int | None = None) -> None:
        if threads:  # CPU workers share the node's cores instead of each taking them all
            torch.set_num_threads(threads)
        self.allocator = DeviceAllocator(resolve_device(device), memory_limit)
        self.worker = Worker(name, self.allocator)
        self.loader = Loader(Workers([self.worker]), lock=None)
        self.residents: dict[str, Resident] = {}  # collection (as owners name it) -> segments
        self.held: dict[int, Reservation] = {}
        self._tokens = itertools.count(1)

    # -- the allocator, for the coordinator's RemoteAllocator ---------------------------
    def device(self) -> str:
        return str(self.allocator.device)

    def free_bytes(self) -> int:
        return self.allocator.free_bytes

    def reserve(self, nbytes: int, what: str) -> int:
        token = next(self._tokens)
        self.held[token] = self.allocator.reserve(nbytes, what)
        return token

    def close(self, token: int) -> None:
        r = self.held.pop(token, None)
        if r is not None:
            r.close()

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None) -> None:
        self.allocator.free(collection, partition, segment)
        res = self.residents.get(collection)
        if res is None:
            return
        for seg_id, rs in list(res.segments.items()):
            if (partition is None or rs.partition == partition) and \
                    (segment is None or str(seg_id) == segment):
                res.forget_segment(seg_id)
        if not res.segments:
            del self.residents[collection]

    def collection_info(self, name: str) -> dict:
        return self.allocator.collection_info(name)

    def memory_info(self) -> dict:
        return self.allocator.memory_info()

    # -- segments -------------------------------------------------------------------------
    def load(self, files: FilesSnapshot, fields: list[str], seg: SealedSegment,
             token: int | None) -> None:
        """Read one sealed segment from the data directory onto this worker's device,
        drawing from the reservation ``token``; on failure nothing of it stays."""
        res = self.residents.get(files.name)
        if res is None:
            res = self.residents[files.name] = Resident(files, fields, None, False,
                                                        set(files.partitions))
        res.collection = files  # the newest manifest (indexes made since)
        try:
            self.loader._load_sealed(res, seg, self.held.get(token), self.worker)
        except BaseException:
            self.free(files.name, segment=str(seg.id))
            raise

    def _seg(self, collection: str, seg_id: int):
        return self.residents[collection].segments[seg_id]

    def scan(self, collection: str, seg_ids: list[int], q: torch.Tensor, field: str,
             limit: int, flt: Any, plan: Any, out: tuple) -> list[tuple]:
        """Each of these segments' top-k for the batch ``q``: distances, rows, and what
        the coordinator will show of the rows found, read here in the same call: their
        distinct row numbers (sorted) with ``search.fetch(*out)``'s columns and rows."""
        from . import search

        schema, spec, names, built = out
        answers = []
        for seg_id in seg_ids:
            seg = self._seg(collection, seg_id)
            d, i = search.scan_segment(q.to(seg.device), seg, field, limit, flt,
                                       search.on_device(plan, seg.device))
            i = i.cpu()
            found = torch.unique(i[i >= 0])
            answers.append((d.cpu(), i, found.numpy(),
                            *search.fetch(schema, seg, found, spec, names, built)))
        return answers

    def rows(self, collection: str, seg_id: int, flt: Any, ids: Any, pk: str) -> torch.Tensor:
        from . import search

        return search.segment_rows(self._seg(collection, seg_id), flt, ids, pk)

    def count(self, collection: str, seg_id: int, flt: Any) -> int:
        from . import search

        return search.segment_count(self._seg(collection, seg_id), flt)

    def keys(self, collection: str, seg_id: int, pk: str, idx: torch.Tensor) -> Any:
        from . import search

        return search.segment_keys(self._seg(collection, seg_id), pk, idx)

    def fetch(self, collection: str, picks: list[tuple[int, torch.Tensor]], schema: Any,
              spec: Any, names: list[str], rows: bool) -> list[tuple]:
        """Output columns (and row dicts) of rows of several segments here."""
        from . import search

        return [search.fetch(schema, self._seg(collection, seg_id), idx, spec, names, rows)
                for seg_id, idx in picks]

    def mark_deleted(self, collection: str, seg_id: int, hit: torch.Tensor) -> None:
        self._seg(collection, seg_id).mark_deleted(hit)

    def put_deleted(self, collection: str, seg_id: int, deleted: torch.Tensor) -> None:
        seg = self._seg(collection, seg_id)
        seg.put_deleted(deleted.to(seg.device))

    def add_indexes(self, collection: str, files: FilesSnapshot, entries: list[dict]) -> None:
        """Build scalar and JSON-path indexes made while loaded on this worker's copies."""
        res = self.residents.get(collection)
        if res is None:
            return
        res.collection = files
        targets = self.loader.scalar_targets(res, entries)
        from .index import scalar

        for rs in res.segments.values():
            for name, t in targets:
                rs.put_index(name, t, scalar.build(t, rs))


class RemoteAllocator:
    """A Ray worker's allocator as the coordinator's loader and reports use it. ``dead``
    once the worker was found gone: placement passes it by, reports show it empty."""

    def __init__(self, actor: Any, device: torch.device, name: str) -> None:
        self.actor = actor
        self.device = device
        self.name = name
        self.dead = False

    @property
    def free_bytes(self) -> int:
        return 0 if self.dead else _call(self.actor.free_bytes, who=self.name)

    def reserve(self, nbytes: int, what: str) -> "RemoteReservation":
        return RemoteReservation(self, _call(self.actor.reserve, int(nbytes), what,
                                             who=self.name))

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None, part: str | None = None) -> None:
        _gone_is_freed(self.actor.free, collection, partition, segment)

    def collection_info(self, name: str) -> dict:
        if self.dead:
            return {"bytes": 0, "parts": {}}
        return _call(self.actor.collection_info, name, who=self.name)

    def memory_info(self) -> dict:
        if self.dead:
            return {"device": f"{self.device} (gone)", "capacity_bytes": 0, "used_bytes": 0,
                    "reserved_bytes": 0, "free_bytes": 0, "collections": {}}
        return _call(self.actor.memory_info, who=self.name)


class RemoteReservation:
    def __init__(self, allocator: RemoteAllocator, token: int) -> None:
        self.allocator, self.token, self.closed = allocator, token, False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            _gone_is_freed(self.allocator.actor.close, self.token)

    def __enter__(self) -> "RemoteReservation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _call(method: Any, *args: Any, who: str = "a Ray worker") -> Any:
    """A worker call, waited for (``_got``)."""
    return _got(method.remote(*args), who)


def _got(ref: Any, who: str) -> Any:
    """A started worker call's answer: a Milvus error raised there is raised here as it
    was; a worker that died is ``WorkerLost`` (its segments are never searched half)."""
    ray = _ray()
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, MilvusException):
            raise e.cause.with_traceback(None) from None
        log.error("a call on worker %s failed: %s", who, e)
        raise MilvusException(f"worker {who} failed with {type(e.cause).__name__}: its "
                              "log and the server's say why; nothing of the call was kept",
                              code=65535) from None
    except ray.exceptions.RayActorError as e:
        raise WorkerLost(who, type(e).__name__) from None
    except ray.exceptions.RayError as e:  # the object store, a node's raylet: said in the log
        log.error("a call on worker %s failed in Ray: %s", who, e)
        raise MilvusException(f"worker {who} could not be reached ({type(e).__name__}): the "
                              "server's log says why; try again", code=65535) from None


def dead_workers(workers: list[Worker], timeout: float = 10.0) -> list[str]:
    """The names of the Ray workers among ``workers`` whose actor is gone (pinged at
    once; one busy past ``timeout`` counts as alive)."""
    ray = _ray()
    refs = [(w.name, w.root.actor.device.remote()) for w in workers]
    gone = []
    for name, ref in refs:
        try:
            ray.get(ref, timeout=timeout)
        except ray.exceptions.RayActorError:
            gone.append(name)
        except ray.exceptions.GetTimeoutError:
            pass
    return gone


class Heartbeat:
    """Pings the Ray workers every ``interval`` seconds from a daemon thread, so that a
    worker that dies is found, and its segments served from replicas or re-placed, while
    no read reaches it; ``on_lost`` is handed the names of those found dead."""

    def __init__(self, workers: Workers, interval: float, on_lost: Any) -> None:
        self.workers, self.interval, self.on_lost = workers, float(interval), on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hotset-heartbeat")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                live = self.workers.live_remote()
                gone = dead_workers(live, timeout=self.interval) if live else []
                if gone and not self._stop.is_set():
                    self.on_lost(gone)
            except Exception:  # noqa: BLE001 - the next beat tries again; said in the log
                log.exception("the Ray workers' heartbeat failed; trying again in %.1f s",
                              self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _gone_is_freed(method: Any, *args: Any) -> None:
    """Give memory back on a worker; one that died holds none (its process is gone)."""
    ray = _ray()
    try:
        ray.get(method.remote(*args))
    except ray.exceptions.RayActorError:
        pass


class Gathered:
    """One call started on each worker holding some of ``segs`` (``start(actor,
    collection, its segments)``); ``wait`` gives one answer a segment, in their order."""

    def __init__(self, segs: list["RemoteSegment"], start: Any) -> None:
        self.segs = segs
        by: dict[int, list] = {}
        for s in segs:
            by.setdefault(id(s._actor), []).append(s)
        self.calls = [(mine, start(mine[0]._actor, mine[0].collection, mine))
                      for mine in by.values()]

    def wait(self) -> list:
        got: dict[int, Any] = {}
        for mine, ref in self.calls:
            answers = _got(ref, mine[0].worker.name)
            got.update({id(s): a for s, a in zip(mine, answers)})
        return [got[id(s)] for s in self.segs]


class RemoteSegment:
    """A sealed segment held by a Ray worker, as the coordinator's reads see it."""

    remote = True

    def __init__(self, worker: Worker, collection: str, seg: SealedSegment,
                 device: torch.device) -> None:
        self.worker, self.collection = worker, collection
        self.seg_id, self.partition, self.num_rows = seg.id, seg.partition, seg.num_rows
        self.device = device  # where its results are merged (the coordinator's)
        self.allocator = worker.allocator
        self._actor = worker.root.actor

    @staticmethod
    def scan_many(segs: list["RemoteSegment"], q: torch.Tensor, field: str, limit: int,
                  flt: Any, plan: Any, out: tuple) -> "Gathered":
        """Start the scans of ``segs``, one call a worker; ``wait`` gives their top-k
        and the output (``out``: ``search.fetch``'s arguments) of the rows in it, in the
        order of ``segs``."""
        qc = q.cpu()
        return Gathered(segs, lambda actor, coll, mine: actor.scan.remote(
            coll, [s.seg_id for s in mine], qc, field, limit, flt, plan, out))

    @staticmethod
    def fetch_many(picks: list[tuple["RemoteSegment", torch.Tensor]], schema: Any, spec: Any,
                   names: list[str], rows: bool) -> "Gathered":
        """Start reading output rows of several segments, one call a worker."""
        idx = {id(s): i for s, i in picks}
        return Gathered([s for s, _ in picks], lambda actor, coll, mine: actor.fetch.remote(
            coll, [(s.seg_id, idx[id(s)]) for s in mine], schema, spec, names, rows))

    def _call(self, method: Any, *args: Any) -> Any:
        return _call(method, self.collection, self.seg_id, *args, who=self.worker.name)

    def rows(self, flt: Any, ids: Any, pk: str) -> torch.Tensor:
        return self._call(self._actor.rows, flt, ids, pk)

    def count(self, flt: Any) -> int:
        return self._call(self._actor.count, flt)

    def keys(self, pk: str, idx: torch.Tensor) -> Any:
        return self._call(self._actor.keys, pk, idx)

    def fetch(self, schema: Any, idx: torch.Tensor, spec: Any, names: list[str],
              rows: bool) -> tuple:
        return _call(self._actor.fetch, self.collection, [(self.seg_id, idx)], schema, spec,
                     names, rows, who=self.worker.name)[0]

    def mark_deleted(self, hit: torch.Tensor) -> None:
        """A delete on a worker found gone is kept by the collection on disk: the copy
        re-placed from it carries it."""
        if not self.worker.root.dead:
            try:
                self._call(self._actor.mark_deleted, hit.cpu())
            except WorkerLost:
                self.worker.root.dead = True

    def put_deleted(self, deleted: torch.Tensor) -> None:
        self._call(self._actor.put_deleted, deleted.cpu())



class RemoteLoads:
    """Sealed segments being read by Ray workers, all started at once: each actor works
    through the ones placed on it in order while the others work through theirs, so a
    load takes as long as its busiest worker, not the sum of them."""

    def __init__(self) -> None:
        self.pending: dict[Any, tuple] = {}  # call -> (segment, worker, replica, files name)

    def start(self, files: FilesSnapshot, fields: list[str], seg: SealedSegment,
              token: int | None, worker: Worker, replica: bool) -> None:
        ref = worker.root.actor.load.remote(files, fields, seg, token)
        self.pending[ref] = (seg, worker, replica, files.name)

    def finished(self, wait: float | None) -> list[tuple]:
        """The loads that have finished, each (segment, worker, replica, files name),
        waiting up to ``wait`` seconds for the first (None: as long as it takes; 0: not
        at all); a load that failed raises as its worker raised it (``_got``)."""
        if not self.pending:
            return []
        ray, refs = _ray(), list(self.pending)
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not done and wait != 0:
            done, _ = ray.wait(refs, num_returns=1, timeout=wait)
        out = []
        for ref in done:
            seg, worker, replica, name = self.pending.pop(ref)
            _got(ref, worker.name)
            out.append((seg, worker, replica, name))
        return out


def files_for(worker: Worker, coll: Any) -> FilesSnapshot:
    """What a Ray worker is handed to read a collection's segments: its files now, named
    as the worker's allocator tags the collection's owners."""
    files = coll.snapshot()
    files.name = worker.owner_name(coll.name)
    return files


def ray_workers(count: int, device: torch.device, memory_limit: int | None,
                address: str | None = None) -> list[Worker]:
    """``count`` Ray actors, one device each (``num_gpus=1`` when ``device`` is CUDA),
    connected to the Ray cluster at ``address`` (None: the one this process started or
    joined already; "auto": the local node's)."""
    ray = _ray()
    if not ray.is_initialized():
        if address is None:  # a local cluster of our own: just the actors, on loopback
            start_local_cluster(count + 1, 256 << 20)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    gpus = 1 if device.type == "cuda" else 0
    # CPU workers take no Ray CPU slot (a node's count would cap how many start) and split
    # the node's cores between them instead
    actor = ray.remote(num_cpus=0, num_gpus=gpus, max_restarts=0)(RayWorker)
    dev = "cuda" if gpus else "cpu"
    threads = None if gpus else max(1, (os.cpu_count() or 1) // count)
    out = []
    for i in range(count):
        name = f"ray/{i}"
        handle = actor.remote(name, dev, memory_limit, threads)
        out.append(Worker(name, RemoteAllocator(handle, torch.device(dev), name), remote=True))
    _ray().get([w.allocator.actor.device.remote() for w in out])  # started, or raise here
    return out


def start_local_cluster(cpus: int, object_store_bytes: int) -> None:
    """Start a Ray cluster of this process's own, on loopback only.

    Starts by one user on one machine take turns (a lock file of theirs in the temp
    directory): local clusters share Ray's files there and the token file a first start
    writes (~/.ray/auth_token), and on a loaded two-core machine a start has been seen
    to miss Ray's fixed 30 s for its node to register. Such a start is tried once more; a second failure is raised
    with the ends of the raylet's and the GCS's logs, which say why."""
    ray = _ray()
    lock_path = os.path.join(tempfile.gettempdir(), f"hotset-ray-start-{os.getuid()}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for attempt in (1, 2):
            try:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1", object_store_memory=object_store_bytes)
                return
            except Exception as e:  # Ray raises a bare Exception for a node that timed out
                logs = _start_logs()
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(e):
                    raise RuntimeError(f"the local Ray cluster did not start: {e}\n{logs}") from e
                log.warning("the local Ray cluster did not start (%s); trying once more.\n%s",
                            e, logs)


def _start_logs(lines: int = 15) -> str:
    """The last lines of the latest local Ray session's raylet and GCS logs."""
    folder = Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"
    out = []
    for name in ("raylet.err", "raylet.out", "gcs_server.err", "gcs_server.out"):
        try:
            tail = (folder / name).read_text(errors="replace").splitlines()[-lines:]
        except OSError as e:
            tail = [f"(unreadable: {e.strerror})"]
        out.append(f"--- {folder / name}:\n" + "\n".join(tail))
    return "\n".join(out)

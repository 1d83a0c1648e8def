"""DeviceAllocator: the budget and the residency table of one device.

Every tensor (and, on the CPU device, every Arrow column) the engine makes resident is
registered here under an :class:`Owner` tag; ``memory_info()`` is that table summed per
collection and part. Rules:
- the accounting is exact: an owner's bytes are the ``nbytes`` of what it registered;
- whoever is about to allocate takes a :class:`Reservation` first (``reserve``), all or
  nothing; registrations made through it draw it down, and closing it returns what is
  left. A load reserves its whole plan, a read-path cache its own size, as FAISS's
  ``GpuMemoryReservation`` does;
- ``used_bytes`` is always the registered bytes plus what open reservations still hold;
- running out is a normal outcome: ``InsufficientMemory`` (1400) with bytes needed and
  free, and nothing changes;
- on a CUDA device, Arrow columns and tensors registered as host memory (a quantised
  index's refine rows) stay in host memory: they are listed as ``host_parts`` and do not count against the device's
  capacity.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch

from .device import available_memory
from .errors import InsufficientMemory

DEFAULT_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class Owner:
    collection: str
    partition: str
    segment: str  # a sealed segment id, "growing", or "" for collection-wide parts
    part: str     # a field name, "<vector field>/<index part>", or "$deleted"


def nbytes_of(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    return int(obj.nbytes)  # pyarrow Array


class Reservation:
    """Bytes set aside on a device before they are allocated. ``register`` through it
    draws it down (and takes from the free bytes beyond it); ``close`` (or leaving the
    ``with`` block) returns the remainder. A closed reservation registers straight from
    the free bytes, so a resident object may keep the handle it was loaded with."""

    def __init__(self, allocator: "DeviceAllocator", nbytes: int, what: str) -> None:
        self.allocator = allocator
        self.remaining = nbytes
        self.what = what
        self.closed = False

    def register(self, owner: Owner, *objs: Any, host: bool = False) -> None:
        self.allocator.register(owner, *objs, reservation=self, host=host)

    def close(self) -> None:
        self.allocator._close(self)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.remaining} bytes left"
        return f"<Reservation {self.what}: {state}>"


class DeviceAllocator:
    def __init__(self, device: torch.device, memory_limit: int | None = None) -> None:
        self.device = device
        if memory_limit is None:
            memory_limit = int(available_memory(device) * DEFAULT_FRACTION)
        self.capacity = int(memory_limit)
        self._lock = threading.Lock()
        self._bytes: dict[Owner, int] = {}
        self._host: dict[Owner, int] = {}
        self._open: set[Reservation] = set()

    # -- budget -----------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return self.registered_bytes + self.reserved_bytes

    @property
    def registered_bytes(self) -> int:
        return sum(self._bytes.values())

    @property
    def reserved_bytes(self) -> int:
        """What open reservations still hold."""
        return sum(r.remaining for r in self._open)

    @property
    def free_bytes(self) -> int:
        return max(self.capacity - self.used_bytes, 0)

    def reserve(self, nbytes: int, what: str) -> Reservation:
        """Set ``nbytes`` aside (InsufficientMemory if they are not free); returns the
        handle that registrations draw from and that ``close`` returns."""
        with self._lock:
            if nbytes > self.capacity - self.used_bytes:
                raise InsufficientMemory(str(self.device), nbytes, self.free_bytes, what)
            r = Reservation(self, int(nbytes), what)
            self._open.add(r)
            return r

    def _close(self, r: Reservation) -> None:
        with self._lock:
            self._open.discard(r)
            r.remaining, r.closed = 0, True

    # -- residency ----------------------------------------------------------------------
    def register(self, owner: Owner, *objs: Any, reservation: Reservation | None = None,
                 host: bool = False) -> None:
        """Set ``owner``'s bytes to the total size of ``objs`` (replacing what it had),
        drawing growth from ``reservation`` first, then from the free bytes.
        Tensors count on the device; Arrow columns, and tensors registered with ``host``
        (a quantised index's refine rows), live in host memory, which is the device when
        it is "cpu" and is listed apart (``host_parts``) otherwise."""
        on_cpu = self.device.type == "cpu"

        def counts(o: Any) -> bool:
            return on_cpu or (isinstance(o, torch.Tensor) and not host)

        size = sum(nbytes_of(o) for o in objs if counts(o))
        host_bytes = sum(nbytes_of(o) for o in objs if not counts(o))
        with self._lock:
            growth = size - self._bytes.get(owner, 0)
            held = reservation.remaining if reservation is not None else 0
            drawn = min(max(growth, 0), held)
            if growth - drawn > self.capacity - self.used_bytes:
                raise InsufficientMemory(str(self.device), growth - drawn, self.free_bytes,
                                         f"{owner.collection}/{owner.part}")
            if drawn:
                reservation.remaining -= drawn
            if host_bytes:
                self._host[owner] = host_bytes
            else:
                self._host.pop(owner, None)
            if size or owner in self._bytes:
                self._bytes[owner] = size

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None, part: str | None = None) -> None:
        """Forget every owner of ``collection`` (optionally only one partition, segment or
        part)."""
        def gone(o: Owner) -> bool:
            return (o.collection == collection
                    and (partition is None or o.partition == partition)
                    and (segment is None or o.segment == segment)
                    and (part is None or o.part == part))

        with self._lock:
            for table in (self._bytes, self._host):
                for o in [o for o in table if gone(o)]:
                    del table[o]

    # -- reporting ----------------------------------------------------------------------
    def held(self, owner: Owner) -> int:
        """The device bytes ``owner`` has registered."""
        with self._lock:
            return self._bytes.get(owner, 0)

    def collection_info(self, name: str) -> dict:
        with self._lock:
            return self._entry(name)

    def _entry(self, name: str) -> dict:
        parts: dict[str, int] = {}
        for o, b in self._bytes.items():
            if o.collection == name:
                parts[o.part] = parts.get(o.part, 0) + b
        entry: dict[str, Any] = {"bytes": sum(parts.values()), "parts": parts}
        host: dict[str, int] = {}
        for o, b in self._host.items():
            if o.collection == name:
                host[o.part] = host.get(o.part, 0) + b
        if host:
            entry["host_bytes"] = sum(host.values())
            entry["host_parts"] = host
        return entry

    def memory_info(self) -> dict:
        with self._lock:
            names = sorted({o.collection for o in [*self._bytes, *self._host]})
            used = self.used_bytes
            return {"device": str(self.device), "capacity_bytes": self.capacity,
                    "used_bytes": used, "reserved_bytes": self.reserved_bytes,
                    "free_bytes": max(self.capacity - used, 0),
                    "collections": {n: self._entry(n) for n in names}}


class AllocatorView:
    """One database's window on the device's allocator: the same budget, with every owner
    of this database tagged ``<database>/<collection>``, so two databases may hold
    collections of one name and ``memory_info()`` tells them apart."""

    def __init__(self, parent: DeviceAllocator, database: str) -> None:
        self.parent = parent
        self.prefix = f"{database}/"
        self.device = parent.device

    def _own(self, owner: Owner) -> Owner:
        return Owner(self.prefix + owner.collection, owner.partition, owner.segment,
                     owner.part)

    def reserve(self, nbytes: int, what: str) -> Reservation:
        r = self.parent.reserve(nbytes, what)
        r.allocator = self  # registrations through it are tagged here
        return r

    def _close(self, r: Reservation) -> None:
        self.parent._close(r)

    def register(self, owner: Owner, *objs: Any, reservation: Reservation | None = None,
                 host: bool = False) -> None:
        self.parent.register(self._own(owner), *objs, reservation=reservation, host=host)

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None, part: str | None = None) -> None:
        self.parent.free(self.prefix + collection, partition, segment, part)

    def held(self, owner: Owner) -> int:
        return self.parent.held(self._own(owner))

    def collection_info(self, name: str) -> dict:
        return self.parent.collection_info(self.prefix + name)

    def memory_info(self) -> dict:
        return self.parent.memory_info()  # the device's: every database's collections

    def __getattr__(self, name: str) -> Any:  # capacity, used_bytes, free_bytes, ...
        return getattr(self.parent, name)

"""DeviceAllocator: the budget and the residency table of one device.

Every tensor (and, on the CPU device, every Arrow column) the engine makes resident is
registered here under an :class:`Owner` tag; ``memory_info()`` is that table summed per
collection and part. Rules:
- the accounting is exact: an owner's bytes are the ``nbytes`` of what it registered;
- a load reserves its planned bytes before it copies anything (``reserve``), all or
  nothing; registrations of that collection draw the reservation down; ``unreserve``
  returns what was left;
- running out is a normal outcome: ``InsufficientMemory`` (1400) with bytes needed and
  free, and nothing changes;
- on a CUDA device, Arrow columns stay in host memory: they are listed as ``host_parts``
  and do not count against the device's capacity.
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
    segment: str  # a sealed segment id, or "growing"
    part: str     # a field name, "<vector field>/<index part>", or "$deleted"


def nbytes_of(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    return int(obj.nbytes)  # pyarrow Array


class DeviceAllocator:
    def __init__(self, device: torch.device, memory_limit: int | None = None) -> None:
        self.device = device
        if memory_limit is None:
            memory_limit = int(available_memory(device) * DEFAULT_FRACTION)
        self.capacity = int(memory_limit)
        self._lock = threading.Lock()
        self._bytes: dict[Owner, int] = {}
        self._host: dict[Owner, int] = {}
        self._reserved: dict[str, int] = {}

    # -- budget -----------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        return sum(self._bytes.values()) + sum(self._reserved.values())

    @property
    def free_bytes(self) -> int:
        return max(self.capacity - self.used_bytes, 0)

    def reserve(self, collection: str, nbytes: int, what: str = "") -> None:
        with self._lock:
            if nbytes > self.capacity - self.used_bytes:
                raise InsufficientMemory(str(self.device), nbytes, self.free_bytes,
                                         what or f"collection {collection}")
            self._reserved[collection] = self._reserved.get(collection, 0) + nbytes

    def unreserve(self, collection: str) -> None:
        with self._lock:
            self._reserved.pop(collection, None)

    # -- residency ----------------------------------------------------------------------
    def register(self, owner: Owner, *objs: Any) -> None:
        """Set ``owner``'s bytes to the total size of ``objs`` (replacing what it had).
        Tensors count on their device; Arrow columns live in host memory, which is the
        device when it is "cpu" and is listed apart (``host_parts``) otherwise."""
        on_cpu = self.device.type == "cpu"
        size = sum(nbytes_of(o) for o in objs if on_cpu or isinstance(o, torch.Tensor))
        host = 0 if on_cpu else sum(nbytes_of(o) for o in objs if not isinstance(o, torch.Tensor))
        with self._lock:
            if host:
                self._host[owner] = host
            else:
                self._host.pop(owner, None)
            growth = size - self._bytes.get(owner, 0)
            reserved = self._reserved.get(owner.collection, 0)
            drawn = min(max(growth, 0), reserved)
            if growth - drawn > self.capacity - self.used_bytes:
                raise InsufficientMemory(str(self.device), growth - drawn, self.free_bytes,
                                         f"{owner.collection}/{owner.part}")
            if drawn:
                self._reserved[owner.collection] = reserved - drawn
            if size or owner in self._bytes:
                self._bytes[owner] = size

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None) -> None:
        """Forget every owner of ``collection`` (optionally only one partition/segment)."""
        def gone(o: Owner) -> bool:
            return (o.collection == collection
                    and (partition is None or o.partition == partition)
                    and (segment is None or o.segment == segment))

        with self._lock:
            for table in (self._bytes, self._host):
                for o in [o for o in table if gone(o)]:
                    del table[o]
            if partition is None and segment is None:
                self._reserved.pop(collection, None)

    # -- reporting ----------------------------------------------------------------------
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
            used = sum(self._bytes.values()) + sum(self._reserved.values())
            return {"device": str(self.device), "capacity_bytes": self.capacity,
                    "used_bytes": used, "free_bytes": max(self.capacity - used, 0),
                    "collections": {n: self._entry(n) for n in names}}

"""Workers: the devices a database serves from.

A worker owns one device and its ``DeviceAllocator`` (budget, reservations, residency
table); the resident segments placed on it (``placement.py``) have their tensors on its
device and register through its allocator, and their scans run there. The first worker
is the **coordinator**: it also holds what is collection-wide (trained index parts, which
the coarse probe runs on once per search) and the growing segments, and merges the
workers' top-k. One device is the one-worker case of the same code.

In-process workers are one per local device (``devices=["cuda:0", "cuda:1"]``) or
several on the CPU (``devices=["cpu", "cpu"]``: how the tests run placement and fan-out).
All workers of a database are of one device type: a plan counts bytes the same way on
each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from .allocator import AllocatorView, DeviceAllocator
from .errors import ParamError


@dataclass(eq=False)
class Worker:
    name: str
    allocator: Any  # DeviceAllocator, or a database's AllocatorView of one
    remote: bool = False  # a Ray actor (``cluster.py``): its allocator is a proxy

    @property
    def device(self) -> torch.device:
        return self.allocator.device

    @property
    def free_bytes(self) -> int:
        return self.allocator.free_bytes

    @property
    def root(self) -> Any:
        """The allocator itself, under a database's view of it (a Ray worker's: the
        ``cluster.RemoteAllocator`` with its actor and ``dead`` flag)."""
        return _root(self.allocator)

    def owner_name(self, collection: str) -> str:
        """A collection's name as this worker's allocator tags its owners."""
        return getattr(self.allocator, "prefix", "") + collection

    def __repr__(self) -> str:
        return f"<Worker {self.name}>"


class Workers(Sequence[Worker]):
    def __init__(self, workers: Sequence[Worker]) -> None:
        if not workers:
            raise ParamError("a database needs at least one device to serve from")
        kinds = {w.device.type for w in workers}
        if len(kinds) > 1:
            raise ParamError(f"devices {[str(w.device) for w in workers]} mix device types: "
                             "give only CUDA devices or only 'cpu'")
        self._all = list(workers)

    @classmethod
    def local(cls, devices: Sequence[torch.device], memory_limit: int | None) -> "Workers":
        """One in-process worker per entry of ``devices`` (a device may repeat: several
        "cpu" workers), each with its own allocator of ``memory_limit`` bytes."""
        names = [str(d) for d in devices]
        if len(set(names)) < len(names):
            names = [f"{d}/{i}" for i, d in enumerate(names)]
        return cls([Worker(n, DeviceAllocator(d, memory_limit))
                    for n, d in zip(names, devices)])

    def view(self, database: str) -> "Workers":
        """The same workers as one more database sees them (its owners tagged)."""
        return Workers([Worker(w.name, AllocatorView(w.root, database), w.remote)
                        for w in self._all])

    def __getitem__(self, i):  # type: ignore[override]
        return self._all[i]

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Worker]:
        return iter(self._all)

    @property
    def coordinator(self) -> Worker:
        return self._all[0]

    @property
    def names(self) -> list[str]:
        return [w.name for w in self._all]

    @property
    def sealed_holders(self) -> list[Worker]:
        """The workers sealed segments are placed on: every one, or only the Ray workers
        when there are some (the coordinator then keeps the growing rows alone)."""
        if any(w.remote for w in self._all):
            return self.live_remote()
        return list(self._all)

    def live_remote(self) -> list[Worker]:
        """The Ray workers not yet found dead."""
        return [w for w in self._all if w.remote and not self.gone(w)]

    @staticmethod
    def gone(w: Worker) -> bool:
        """A Ray worker found dead (``cluster.RemoteAllocator.dead``)."""
        return bool(getattr(w.root, "dead", False))

    def by_name(self, name: str) -> Worker | None:
        return next((w for w in self._all if w.name == name), None)

    def close(self) -> None:
        """Stop the Ray actors these workers started (their segments go with them)."""
        remote = [w for w in self._all if w.remote]
        if remote:
            import ray

            for w in remote:
                if not self.gone(w):
                    ray.kill(w.root.actor)

    def holding(self, allocator: Any) -> Worker:
        return next(w for w in self._all if w.allocator is allocator)

    def free(self, collection: str, partition: str | None = None,
             segment: str | None = None) -> None:
        """Forget a collection's owners (or a partition's, a segment's) on every worker."""
        for w in self._all:
            w.allocator.free(collection, partition, segment)

    def collection_info(self, name: str) -> dict:
        """A collection's resident bytes summed over the workers, and per worker."""
        per = {w.name: w.allocator.collection_info(name) for w in self._all}
        out = _sum_entries(list(per.values()))
        if len(self._all) > 1:
            out["workers"] = {n: e for n, e in per.items() if e["bytes"] or e.get("host_bytes")}
        return out

    def memory_info(self) -> dict:
        """The coordinator's device, the capacities and bytes summed over the workers and
        every collection's entry summed; with several workers, each worker's own."""
        infos = [w.allocator.memory_info() for w in self._all]
        if len(infos) == 1:
            return infos[0]
        out: dict[str, Any] = {"device": infos[0]["device"]}
        for key in ("capacity_bytes", "used_bytes", "reserved_bytes", "free_bytes"):
            out[key] = sum(i[key] for i in infos)
        names = sorted({n for i in infos for n in i["collections"]})
        out["collections"] = {n: _sum_entries([i["collections"][n] for i in infos
                                               if n in i["collections"]]) for n in names}
        out["workers"] = [{"name": w.name, **i} for w, i in zip(self._all, infos)]
        return out


def _root(allocator: Any) -> DeviceAllocator:
    return allocator.parent if isinstance(allocator, AllocatorView) else allocator


def _sum_entries(entries: list[dict]) -> dict:
    parts: dict[str, int] = {}
    host: dict[str, int] = {}
    for e in entries:
        for k, v in e["parts"].items():
            parts[k] = parts.get(k, 0) + v
        for k, v in e.get("host_parts", {}).items():
            host[k] = host.get(k, 0) + v
    out: dict[str, Any] = {"bytes": sum(parts.values()), "parts": parts}
    if host:
        out["host_bytes"] = sum(host.values())
        out["host_parts"] = host
    return out

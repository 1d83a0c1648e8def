"""Timing helpers shared by the benchmarks: device sync, best-of-N wall time, and the
device's practical memory bandwidth (a device-to-device copy, bytes read + written)."""
from __future__ import annotations

import time
from typing import Callable

import torch


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def best_seconds(fn: Callable[[], object], repeat: int, dev: torch.device) -> float:
    """Fastest of ``repeat`` timed calls of ``fn`` after one warm-up, synced on ``dev``."""
    fn()
    sync(dev)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        best = min(best, time.perf_counter() - t0)
    return best


def peak_bandwidth(dev: torch.device, nbytes: int = 1 << 28) -> float:
    """Bytes/s of a large copy on ``dev``, counting bytes read and written."""
    a = torch.empty(nbytes, dtype=torch.uint8, device=dev)
    b = torch.empty_like(a)
    return 2 * nbytes / best_seconds(lambda: b.copy_(a), 5, dev)

"""Timing helpers shared by the benchmarks: device sync, best-of-N wall time, batched query
passes, and the device's practical memory bandwidth (a device-to-device copy, bytes read +
written)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
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


def run_batches(fn: Callable[[np.ndarray], list], queries: np.ndarray, batch: int,
                min_seconds: float = 1.0, max_passes: int = 5,
                clock: Callable[[], float] = time.perf_counter) -> tuple[list, float]:
    """Every query, ``batch`` at a time, after one warm-up call (JIT, caches): passes are
    repeated until ``min_seconds`` were spent (at most ``max_passes``) and the best pass
    counts, so a GPU pass of a few milliseconds is not one noisy sample. ``clock`` is
    the time source (a test passes a fake one)."""
    fn(queries[:batch])  # warm-up
    best, spent, passes = float("inf"), 0.0, 0
    found: list = []
    while passes < max_passes and (passes == 0 or spent < min_seconds):
        t0 = clock()
        found = []
        for s in range(0, len(queries), batch):
            found += fn(queries[s:s + batch])
        el = clock() - t0
        best, spent, passes = min(best, el), spent + el, passes + 1
    return found, best

"""Placement: which workers each sealed segment of a load goes to.

A step of every load plan (``Loader.plan``), and a pure function of sizes: segments
largest first, each copy to the worker with the fewest bytes planned so far among those
with room for it (``replicas`` copies on distinct workers). Greedy largest-first keeps
the spread between the most and the least loaded worker within the largest segment. A
copy that fits on no worker makes the whole load fail (1400) naming every worker's free
bytes and the bytes the whole load needs: nothing is reserved before the plan holds.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .errors import InsufficientMemory, ParamError


def place(sizes: Mapping[int, int], free: Sequence[int], replicas: int = 1,
          planned: Sequence[int] | None = None, names: Sequence[str] | None = None,
          what: str = "") -> dict[int, tuple[int, ...]]:
    """Segment id -> the indices (into ``free``) of the workers holding its copies, the
    first the one searches prefer. ``free``: each worker's free bytes; ``planned``: bytes
    already planned on each (the coordinator's growing rows and index parts)."""
    n = len(free)
    if replicas < 1 or replicas > n:
        raise ParamError(f"replica_number={replicas} needs that many workers; this engine "
                         f"has {n} ({', '.join(names or [])}): start it with more devices "
                         "or workers, or load with fewer replicas")
    load = list(planned) if planned is not None else [0] * n
    total = sum(load) + replicas * sum(sizes.values())
    if any(load[w] > free[w] for w in range(n)):
        raise _nowhere(total, free, names, what)
    out: dict[int, tuple[int, ...]] = {}
    for seg_id in sorted(sizes, key=lambda s: (-sizes[s], s)):
        size = sizes[seg_id]
        fits = sorted((w for w in range(n) if load[w] + size <= free[w]),
                      key=lambda w: (load[w], w))
        if len(fits) < replicas:
            raise _nowhere(total, free, names, what)
        chosen = tuple(fits[:replicas])
        for w in chosen:
            load[w] += size
        out[seg_id] = chosen
    return out


def roomiest(need: int, free: Sequence[int], copies: int = 1,
             names: Sequence[str] | None = None, what: str = "") -> tuple[int, ...]:
    """Where one segment made resident after a load's plan goes (a seal, a refresh): the
    ``copies`` workers with the most free bytes (the first listed, on a tie), or 1400
    naming each worker's free bytes when fewer than ``copies`` have ``need``."""
    if copies > len(free):
        raise ParamError(f"replica_number={copies} needs that many workers; this engine "
                         f"has {len(free)}")
    fits = sorted((w for w in range(len(free)) if free[w] >= need), key=lambda w: (-free[w], w))
    if len(fits) < copies:
        raise _nowhere(need * copies, free, names, what)
    return tuple(fits[:copies])


def _nowhere(total: int, free: Sequence[int], names: Sequence[str] | None,
             what: str) -> InsufficientMemory:
    """1400 for a load of ``total`` bytes that does not fit: on one worker as on one
    device; on several, each worker's free bytes named (the figure is their sum)."""
    names = list(names or [f"worker {i}" for i in range(len(free))])
    if len(names) == 1:
        return InsufficientMemory(names[0], total, free[0], what)
    where = ", ".join(f"{name} {f} bytes free" for name, f in zip(names, free))
    return InsufficientMemory(f"its workers ({where})", total, sum(free), what)

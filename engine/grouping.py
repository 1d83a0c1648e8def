"""Grouping search: ``group_by_field``, ``group_size``, ``strict_group_size``.

The answer is the ``limit`` groups whose best hits rank highest, each with its best
``group_size`` hits, groups in the order of their best hit and hits by distance within a
group (Milvus's "max" group scorer). It is exact, not a hopeful over-fetch: the scan is
run for the top ``k = limit * group_size`` hits and, for any query whose ``k`` hits do not
settle the answer (fewer than ``limit`` groups, or a chosen group short of ``group_size``
while more rows remain), run again with ``k`` four times larger, until every query is
settled or its candidates are exhausted. A hit beyond the ``k``-th ranks no better than
any of the first ``k``, so a settled answer cannot change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .collection import Collection
from .errors import FieldNotFound, ParamError
from .schema import DataType

GROUPABLE = (DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
             DataType.VARCHAR)
MAX_GROUP_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Grouping:
    field: str
    size: int
    strict: bool


def grouping_of(coll: Collection, loaded: list[str], opts: dict) -> Grouping | None:
    """The checked grouping a search asks for, or None."""
    name = opts.get("group_by_field")
    if not name:
        for key in ("group_size", "strict_group_size"):
            if opts.get(key) not in (None, False, 1):
                raise ParamError(f"{key} needs group_by_field: name the field to group by")
        return None
    f = coll.schema.field(name) if isinstance(name, str) else None
    if f is None:
        raise FieldNotFound(str(name), "group_by_field")
    if f.dtype not in GROUPABLE:
        raise ParamError(f"group_by_field {name} is {f.dtype.name}: group by a bool, integer "
                         "or VARCHAR field")
    if name not in loaded:
        raise ParamError(f"group_by_field {name} is not loaded: load it with load_fields")
    size = opts.get("group_size")
    size = 1 if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_GROUP_SIZE:
        raise ParamError(f"group_size must be an integer in [1, {MAX_GROUP_SIZE}], got {size!r}")
    return Grouping(name, size, bool(opts.get("strict_group_size")))


def _select(hits: list[dict], limit: int, g: Grouping) -> tuple[list[dict], bool]:
    """The grouped answer from one query's sorted hits, and whether those hits settle it."""
    groups: dict[Any, list[dict]] = {}
    for h in hits:
        key = h["entity"].get(g.field)
        members = groups.get(key)
        if members is None:
            if len(groups) == limit:
                continue
            members = groups[key] = []
        if len(members) < g.size:
            members.append(h)
    settled = len(groups) == limit and all(len(m) == g.size for m in groups.values())
    return [h for members in groups.values() for h in members], settled


def grouped(run: Callable[[int], list[list[dict]]], limit: int, g: Grouping) -> list[list[dict]]:
    """Run the scan (``run(k)``: the top ``k`` hits per query, best first, each with
    ``g.field`` in its entity) as often as it takes to settle every query."""
    k = limit * g.size
    while True:
        hits = run(k)
        out, settled = [], True
        for per in hits:
            answer, done = _select(per, limit, g)
            settled = settled and (done or len(per) < k)  # fewer than k: nothing left
            out.append(answer)
        if settled:
            return out
        k *= 4

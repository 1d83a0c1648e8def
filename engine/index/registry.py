"""Vector index types by name, and how AUTOINDEX resolves.

AUTOINDEX on a vector field resolves once, when the index is created, by the collection's
size: FLAT under ``AUTO_IVF_MIN_ROWS`` rows, else IVF_FLAT with ``AUTO_PARAMS``; on a
binary field (a HAMMING or JACCARD metric) it is BIN_FLAT.
"""
from __future__ import annotations

from ..errors import ParamError

BINARY_METRIC_TYPES = ("HAMMING", "JACCARD")
from .base import VectorIndex
from .flat import BinFlat, Flat
from .ivf import IvfFlat

AUTO_IVF_MIN_ROWS = 1_000_000
AUTO_PARAMS = {"nlist": 1024, "nprobe": 32}

_TYPES: dict[str, VectorIndex] = {}


def register(index: VectorIndex) -> None:
    _TYPES[index.name] = index


register(Flat())
register(IvfFlat())
register(BinFlat())


def vector_types(binary: bool = False) -> tuple[str, ...]:
    """The vector index types a user may name on a float (or ``binary``) vector field,
    AUTOINDEX included."""
    return (*(n for n, i in _TYPES.items() if i.binary == binary), "AUTOINDEX")


def find(engine_type: str) -> VectorIndex | None:
    """The vector index type named ``engine_type``, or None (a scalar index type)."""
    return _TYPES.get(engine_type)


def get(engine_type: str) -> VectorIndex:
    """The index type that serves ``engine_type`` (a resolved type, never AUTOINDEX)."""
    index = _TYPES.get(engine_type)
    if index is None:
        raise ParamError(f"index type {engine_type} is not supported; use one of "
                         f"{list(vector_types())}")
    return index


def resolve(index_type: str, params: dict, row_count: int,
            metric: str | None = None) -> tuple[str, dict]:
    """(engine type, engine params) of a vector index created on a collection of
    ``row_count`` rows."""
    if index_type != "AUTOINDEX":
        return index_type, dict(params)
    if metric in BINARY_METRIC_TYPES:
        return "BIN_FLAT", dict(params)
    if row_count >= AUTO_IVF_MIN_ROWS:
        return "IVF_FLAT", dict(AUTO_PARAMS)
    return "FLAT", dict(params)

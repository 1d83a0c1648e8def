"""Vector index types by name, and how AUTOINDEX resolves.

AUTOINDEX on a vector field resolves once, when the index is created, by the collection's
size: FLAT under ``AUTO_IVF_MIN_ROWS`` rows, else IVF_FLAT with ``AUTO_PARAMS``; on a
binary field (a HAMMING or JACCARD metric) it is BIN_FLAT, on a sparse field
SPARSE_INVERTED_INDEX.
"""
from __future__ import annotations

from ..errors import ParamError
from ..schema import DataType
from .base import VectorIndex
from .flat import BinFlat, Flat
from .hnsw import Hnsw
from .ivf import BinIvfFlat, IvfFlat
from .quant import IvfPq, IvfSq8
from .sparse import SparseInverted, SparseWand

BINARY_METRIC_TYPES = ("HAMMING", "JACCARD")

AUTO_IVF_MIN_ROWS = 1_000_000
AUTO_PARAMS = {"nlist": 1024, "nprobe": 32}

_TYPES: dict[str, VectorIndex] = {}


def register(index: VectorIndex) -> None:
    _TYPES[index.name] = index


register(Flat())
register(IvfFlat())
register(IvfSq8())
register(IvfPq())
register(Hnsw())
register(BinFlat())
register(BinIvfFlat())
register(SparseInverted())
register(SparseWand())


def vector_types(kind: str = "dense") -> tuple[str, ...]:
    """The vector index types a user may name on a field of ``kind`` ("dense", "binary" or
    "sparse" vectors), AUTOINDEX included."""
    return (*(n for n, i in _TYPES.items() if i.kind == kind), "AUTOINDEX")


def kind_of(dtype: DataType) -> str:
    """The kind of vector a field of ``dtype`` holds."""
    if dtype == DataType.BINARY_VECTOR:
        return "binary"
    return "sparse" if dtype == DataType.SPARSE_FLOAT_VECTOR else "dense"


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
            metric: str | None = None, kind: str = "dense") -> tuple[str, dict]:
    """(engine type, engine params) of a vector index created on a collection of
    ``row_count`` rows."""
    if index_type != "AUTOINDEX":
        return index_type, dict(params)
    if metric in BINARY_METRIC_TYPES:
        return "BIN_FLAT", dict(params)
    if kind == "sparse":
        return "SPARSE_INVERTED_INDEX", SparseInverted().check_params(params)
    if row_count >= AUTO_IVF_MIN_ROWS:
        return "IVF_FLAT", dict(AUTO_PARAMS)
    return "FLAT", dict(params)

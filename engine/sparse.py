"""Sparse float vectors (SPARSE_FLOAT_VECTOR): what users send, how a column holds them.

A row is a set of (dimension, value) pairs: dimensions are integers in ``[0, 2**32 - 1)``,
values finite non-negative float32s (Milvus's rules), each dimension at most once. Users
send a row as a dict ``{dim: value}``, an iterable of ``(dim, value)`` pairs, a one-row
scipy sparse matrix, or the wire form (``bytes`` of little-endian uint32 / float32 pairs,
what gRPC carries); a whole column may also be one scipy sparse matrix. A column is an
Arrow ``list<struct<index: uint32, value: float32>>``, dimensions ascending in each row:
stored, logged and kept resident like every variable-width column, and read as CSR tensors
(``csr``) by the sparse index, which builds its postings from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

ENTRY = pa.struct([("index", pa.uint32()), ("value", pa.float32())])
ARROW_TYPE = pa.list_(ENTRY)
MAX_DIM = 2 ** 32 - 1  # dimensions are below it (Milvus reserves the largest uint32)


@dataclass(frozen=True, slots=True)
class SparseRows:
    """CSR rows on one device: ``indptr`` (n + 1,) int64, ``indices`` (nnz,) int64,
    ``values`` (nnz,) float32."""

    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor

    @property
    def num_rows(self) -> int:
        return self.indptr.numel() - 1

    def __len__(self) -> int:
        return self.num_rows

    def to(self, device: torch.device) -> "SparseRows":
        return SparseRows(self.indptr.to(device), self.indices.to(device),
                          self.values.to(device))


def is_matrix(vals: Any) -> bool:
    """Whether ``vals`` is a scipy sparse matrix or array (rows of sparse vectors)."""
    return hasattr(vals, "tocsr") and len(getattr(vals, "shape", ())) == 2


def _scipy_csr(vals: Any) -> Any:
    """``vals`` as a scipy CSR matrix when it is a scipy sparse matrix or array, else None."""
    return vals.tocsr() if is_matrix(vals) else None


def to_arrow(vals: Any, n: int, what: str, error: type,
             null: np.ndarray | None = None) -> pa.Array:
    """``n`` sparse rows (``vals``: a scipy matrix, or one row per element in any of the
    accepted forms) as an Arrow column; ``null`` marks rows that are null. Anything that
    breaks a rule raises ``error`` naming ``what``."""
    m = _scipy_csr(vals)
    if m is not None:
        if m.shape[0] != n:
            raise error(f"{what}: expected {n} sparse rows, got a matrix of {m.shape[0]}")
        m.sort_indices()
        counts = np.diff(m.indptr).astype(np.int64)
        return _build(counts, np.asarray(m.indices, dtype=np.int64),
                      np.asarray(m.data), what, error, null)
    if isinstance(vals, (np.ndarray, torch.Tensor)):
        raise error(f"{what}: sparse vectors must be dicts {{dim: value}}, lists of (dim, "
                    "value) pairs or a scipy sparse matrix, not a dense array")
    rows = list(vals)
    if len(rows) != n:
        raise error(f"{what}: expected {n} sparse rows, got {len(rows)}")
    counts = np.zeros(n, dtype=np.int64)
    dims: list = []
    values: list = []
    for r, row in enumerate(rows):
        if null is not None and null[r]:
            continue
        d, v = _pairs(row, r, what, error)
        counts[r] = len(d)
        dims.extend(d)
        values.extend(v)
    try:
        dim_arr = np.array(dims, dtype=np.int64)
    except OverflowError:
        raise error(f"{what}: sparse vector dimensions must be from 0 to {MAX_DIM - 1}") \
            from None
    return _build(counts, dim_arr, np.array(values, dtype=np.float64), what, error, null)


def _pairs(row: Any, r: int, what: str, error: type) -> tuple[list, list]:
    """(dimensions, values) of one row, as given."""
    if isinstance(row, (bytes, bytearray)):
        if len(row) % 8:
            raise error(f"{what}: row {r} is {len(row)} bytes; the wire form is uint32 "
                        "dimension / float32 value pairs (8 bytes each)")
        arr = np.frombuffer(bytes(row), dtype=np.dtype([("i", "<u4"), ("v", "<f4")]))
        return arr["i"].tolist(), arr["v"].tolist()
    m = _scipy_csr(row)
    if m is not None:
        if m.shape[0] != 1:
            raise error(f"{what}: row {r} is a scipy matrix of {m.shape[0]} rows; give one "
                        "row per entity")
        return m.indices.tolist(), m.data.tolist()
    if isinstance(row, dict):
        items = row.items()
    elif isinstance(row, (list, tuple)):
        items = row
    else:
        raise error(f"{what}: row {r} is not a sparse vector; give a dict {{dim: value}} or "
                    "a list of (dim, value) pairs")
    dims, values = [], []
    for pair in items:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise error(f"{what}: row {r} is not a sparse vector; give a dict {{dim: value}} "
                        "or a list of (dim, value) pairs")
        d, v = pair
        if isinstance(d, str) and d.strip().isdigit():
            d = int(d)  # pymilvus and REST accept dimension keys as numeric strings
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise error(f"{what}: row {r} has value {v!r}, not a number") from None
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise error(f"{what}: row {r} has dimension {d!r}; dimensions are integers from 0 "
                        f"to {MAX_DIM - 1}")
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise error(f"{what}: row {r} has value {v!r}, not a number")
        dims.append(int(d))
        values.append(float(v))
    return dims, values


def _build(counts: np.ndarray, dims: np.ndarray, values: np.ndarray, what: str,
           error: type, null: np.ndarray | None) -> pa.Array:
    """The Arrow column of rows with ``counts`` entries each, checked and each row sorted
    by dimension."""
    if dims.size:
        if dims.min() < 0 or dims.max() >= MAX_DIM:
            raise error(f"{what}: sparse vector dimensions must be from 0 to {MAX_DIM - 1}")
        if not np.isfinite(values).all():
            raise error(f"{what}: sparse vector values must be finite (no NaN or infinity)")
        if values.min() < 0:
            raise error(f"{what}: sparse vector values must be non-negative (Milvus's rule "
                        "for SPARSE_FLOAT_VECTOR); shift or drop negative weights")
    dims = dims.astype(np.int64)
    row = np.repeat(np.arange(counts.size), counts)
    order = np.lexsort((dims, row))
    dims, values = dims[order], values[order].astype(np.float32)
    if dims.size > 1:
        same = (dims[1:] == dims[:-1]) & (row[1:] == row[:-1])
        if same.any():
            r = int(row[1:][same][0])
            raise error(f"{what}: row {r} names dimension {int(dims[1:][same][0])} twice; "
                        "give each dimension once")
    offsets = np.zeros(counts.size + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    entries = pa.StructArray.from_arrays(
        [pa.array(dims.astype(np.uint32)), pa.array(values)], fields=list(ENTRY))
    mask = None if null is None else pa.array(null)
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=ARROW_TYPE, mask=mask)


def csr(col: pa.Array, device: torch.device) -> SparseRows:
    """An Arrow sparse column (any slice, any chunking) as CSR tensors on ``device``; null
    rows are empty."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    flat = pc.list_flatten(col)  # entries of this slice, nulls contributing none
    if len(flat) != offsets[-1]:  # a null row whose offsets span entries
        counts = pc.list_value_length(col).fill_null(0).to_numpy().astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
    indices = flat.field("index").to_numpy().astype(np.int64)
    values = flat.field("value").to_numpy()
    return SparseRows(torch.from_numpy(offsets).to(device),
                      torch.from_numpy(indices).to(device),
                      torch.from_numpy(np.array(values, dtype=np.float32)).to(device))


def to_python(col: pa.Array) -> list[dict | None]:
    """Rows as ``{dim: value}`` dicts, as pymilvus returns them (None where null)."""
    rows = csr(col, torch.device("cpu"))
    offsets = rows.indptr.tolist()
    dims, values = rows.indices.tolist(), rows.values.tolist()
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    return [dict(zip(dims[a:b], values[a:b])) if ok else None
            for a, b, ok in zip(offsets[:-1], offsets[1:], valid)]


def to_wire(col: pa.Array) -> list[bytes]:
    """Rows in the wire form (uint32 / float32 pairs, dimension order): gRPC's contents."""
    rows = csr(col, torch.device("cpu"))
    packed = np.empty(rows.values.numel(), dtype=np.dtype([("i", "<u4"), ("v", "<f4")]))
    packed["i"] = rows.indices.numpy()
    packed["v"] = rows.values.numpy()
    buf = packed.tobytes()
    offsets = rows.indptr.tolist()
    return [buf[8 * a:8 * b] for a, b in zip(offsets[:-1], offsets[1:])]


def queries(data: Any, max_nq: int, error: type) -> SparseRows:
    """Search data for a sparse field (one row or many, any accepted form) as CSR."""
    if isinstance(data, (dict, bytes, bytearray)) or (_scipy_csr(data) is None and
                                                       _is_pair_list(data)):
        data = [data]
    m = _scipy_csr(data)
    n = m.shape[0] if m is not None else (len(data) if isinstance(data, (list, tuple))
                                           else -1)
    if n < 1 or n > max_nq:
        raise error(f"nq (number of search vectors) should be in range [1, {max_nq}], got "
                    f"{max(n, 0)}")
    return csr(to_arrow(data, n, "search data", error), torch.device("cpu"))


def _is_pair_list(data: Any) -> bool:
    """A single row given as a list of (dim, value) pairs (rather than a list of rows)."""
    return isinstance(data, (list, tuple)) and bool(data) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and not isinstance(p[0], (list, tuple,
                                                                                 dict))
        for p in data)


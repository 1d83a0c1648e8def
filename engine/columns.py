"""Column batches: the engine's one in-memory row format.

A :class:`Batch` holds ``num_rows`` rows as columns: fixed-width fields as CPU torch tensors
(``(n,)`` scalars, ``(n, dim)`` vectors), variable-width fields (VARCHAR, JSON text, ARRAY,
``$meta``) as Arrow arrays. A nullable fixed-width field also has a ``(n,) bool`` validity
tensor in ``valid``. User data (a row dict, a list of row dicts, or a dict of columns whose
vector values are 2-D arrays) is converted here, column by column, with numpy/Arrow doing
the per-element work; anything that does not fit the schema raises a 1100 DataError before
anything is written.
"""
from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import sparse
from .errors import DataError, ParamError
from .schema import DYNAMIC_FIELD, INT_TYPES, CollectionSchema, DataType, FieldSchema

_MISSING = object()
_VALID_SUFFIX = ".__valid__"


@dataclass
class Batch:
    num_rows: int
    cols: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, torch.Tensor] = field(default_factory=dict)

    def nbytes(self) -> int:
        total = sum(_nbytes(c) for c in self.cols.values())
        return total + sum(v.numel() for v in self.valid.values())


# An upsert into an auto_id collection inserts its rows under new keys and deletes the keys
# it was given: those ride in the same (one WAL record) batch under this column name.
REPLACED_KEYS = "$replaces"


def auto_keys(pk: FieldSchema, base: int, n: int) -> Any:
    """``n`` new keys of an auto_id primary key: ``base + row``, as INT64, or its decimal
    text for a VARCHAR key (as Milvus), made without a pass over rows."""
    keys = base + torch.arange(n, dtype=torch.int64)
    if pk.dtype == DataType.VARCHAR:
        return pc.cast(pa.array(keys.numpy()), pa.string())
    return keys


def without_replaced(batch: Batch) -> Batch:
    """The rows of ``batch`` to insert (without the keys an auto_id upsert replaces)."""
    if REPLACED_KEYS not in batch.cols:
        return batch
    return Batch(batch.num_rows, {k: v for k, v in batch.cols.items() if k != REPLACED_KEYS},
                 batch.valid)


def _nbytes(col: Any) -> int:
    if isinstance(col, torch.Tensor):
        return col.numel() * col.element_size()
    return col.nbytes


# -- user data -> Batch ---------------------------------------------------------------
def to_batch(schema: CollectionSchema, data: Any, *, auto_id_base: int = 0,
             keys_given: bool = False) -> Batch:
    """Convert user data to a Batch, validating every column. An ``auto_id`` collection
    gets keys ``auto_id_base + row`` unless ``keys_given`` (upsert: the rows name their
    keys)."""
    columns, n, extra = _columns_of(schema, data)
    pk = schema.primary
    generate = schema.auto_id and not keys_given
    if generate and pk.name in columns:
        raise DataError(f"the primary key field {pk.name} is auto_id: do not provide it, "
                        "the engine generates the keys")
    batch = Batch(n)
    for f in schema.fields:
        if f.is_primary and generate:
            batch.cols[f.name] = auto_keys(f, auto_id_base, n)
            continue
        vals = columns.get(f.name, _MISSING)
        if vals is _MISSING:
            if f.nullable or f.default_value is not None:
                vals = [None] * n
            else:
                raise DataError(
                    f"Insert missed an field `{f.name}` to collection without set "
                    f"nullable==true or set default_value: give every row a value for {f.name}")
        _convert(f, vals, n, batch)
    if schema.enable_dynamic_field:
        batch.cols[DYNAMIC_FIELD] = _dynamic(columns, extra, n)
    elif extra:
        raise DataError(f"Attempt to insert an unexpected field `{sorted(extra)[0]}` to "
                        "collection without enabling dynamic field: add it to the schema or "
                        "create the collection with enable_dynamic_field=True")
    return batch


class Columns(dict):
    """Insert data given column by column (what the protocol servers build): one list or
    array per field, even where no 2-D vector array marks it (a nullable vector column)."""


def _is_columnar(schema: CollectionSchema, data: dict) -> bool:
    if isinstance(data, Columns):
        return True
    for f in schema.vector_fields:
        v = data.get(f.name)
        if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 2:
            return True
        if f.is_sparse and sparse.is_matrix(v) and v.shape[0] != 1:
            return True
    return False


def _columns_of(schema: CollectionSchema, data: Any) -> tuple[dict[str, Any], int, set[str]]:
    """Returns {name: column values}, the row count and the keys that are not fields."""
    known = set(schema.names)
    if isinstance(data, pa.Table):
        data = {name: data.column(name).to_pylist() for name in data.column_names}
        return _columns_of(schema, data) if data else ({}, 0, set())
    if isinstance(data, dict) and _is_columnar(schema, data):
        lengths = {k: v.shape[0] if sparse.is_matrix(v) else len(v) for k, v in data.items()}
        n = next(iter(lengths.values()))
        if any(m != n for m in lengths.values()):
            raise DataError(f"columns have different lengths {lengths}: give every column "
                            "one value per row")
        extra = set(data) - known - {DYNAMIC_FIELD}
        return dict(data), n, extra
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise DataError(f"data must be a dict or a list of dicts, got {type(data).__name__}")
    rows: Sequence[dict] = data
    if not all(isinstance(r, dict) for r in rows):
        raise DataError("data must be a list of dicts, one dict per row")
    n = len(rows)
    keys: set[str] = set().union(*(r.keys() for r in rows)) if n else set()
    columns: dict[str, Any] = {}
    for k in keys:
        columns[k] = [r.get(k, _MISSING) for r in rows]
    extra = keys - known - {DYNAMIC_FIELD}
    return columns, n, extra


def _dynamic(columns: dict[str, Any], extra: set[str], n: int) -> pa.Array:
    if not extra:
        return pa.array(["{}"] * n, type=pa.string())
    names = sorted(extra)
    cols = [_as_list(columns[k]) for k in names]
    out = []
    for i in range(n):
        row = {k: c[i] for k, c in zip(names, cols) if c[i] is not _MISSING}
        out.append(_dumps(row, DYNAMIC_FIELD, i))
    return pa.array(out, type=pa.string())


def _as_list(vals: Any) -> list:
    if isinstance(vals, (np.ndarray, torch.Tensor)):
        return vals.tolist()
    return list(vals)


# Deepest nesting of objects and arrays a JSON value (or a dynamic-field row) may have.
# Deeper values are refused at insert: nothing that reads them later (filters, outputs,
# clients' own JSON parsers) has to recurse further than this.
MAX_JSON_DEPTH = 64


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` deep (no recursion)."""
    if not isinstance(value, (dict, list, tuple)):
        return False
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        children = v.values() if isinstance(v, dict) else v
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return False


def _dumps(value: Any, name: str, row: int) -> str:
    if json_too_deep(value):
        raise DataError(f"field {name}: row {row} nests JSON objects or arrays more than "
                        f"{MAX_JSON_DEPTH} levels deep: flatten it")
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=_json_default)
    except (TypeError, ValueError, RecursionError) as e:
        raise DataError(f"field {name}: row {row} is not JSON-serialisable ({e})") from None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _null_mask(f: FieldSchema, vals: Any, n: int) -> np.ndarray | None:
    """Rows given as None or missing; an error for a field that takes neither."""
    if isinstance(vals, (np.ndarray, torch.Tensor)):
        return None
    mask = np.fromiter((v is None or v is _MISSING for v in vals), dtype=bool, count=n)
    if not mask.any():
        return None
    if not (f.nullable or f.default_value is not None):
        row = int(np.argmax(mask))
        raise DataError(f"Insert missed an field `{f.name}` to collection without set "
                        f"nullable==true or set default_value (row {row}): give every row a "
                        f"value for {f.name}")
    return mask


def _convert(f: FieldSchema, vals: Any, n: int, batch: Batch) -> None:
    if f.is_sparse:
        null = None if sparse.is_matrix(vals) else _null_mask(f, vals, n)
        batch.cols[f.name] = sparse.to_arrow(vals, n, f"field {f.name}", DataError, null)
        return
    mask = _null_mask(f, vals, n)
    if mask is not None:
        fill = f.default_value if f.default_value is not None else _zero(f)
        vals = [fill if m else v for v, m in zip(vals, mask)]
        if f.default_value is not None:
            mask = None  # defaulted rows hold a value
    if f.is_fixed:
        t = _fixed_tensor(f, vals, n)
        batch.cols[f.name] = t
        if f.nullable:
            valid = torch.ones(n, dtype=torch.bool)
            if mask is not None:
                valid = torch.from_numpy(~mask)
            batch.valid[f.name] = valid
        return
    arr = _arrow_array(f, vals, mask)
    batch.cols[f.name] = arr


def _zero(f: FieldSchema) -> Any:
    """What a null row holds in a fixed-width column (its validity says it is null)."""
    if f.dtype == DataType.BINARY_VECTOR:
        return bytes(f.width)
    if f.is_vector:
        return [0] * f.width
    if f.dtype == DataType.BOOL:
        return False
    if f.is_fixed:
        return 0
    return None


def binary_rows(vals: Any, width: int, what: str, error: type) -> np.ndarray:
    """(n, width) uint8 packed rows of a BINARY_VECTOR from ``bytes`` per row (pymilvus's
    form), a (n, width) uint8 array, or lists of ``width`` byte values (REST's form)."""
    if isinstance(vals, torch.Tensor):
        vals = vals.detach().cpu().numpy()
    if isinstance(vals, (bytes, bytearray)):
        vals = [vals]
    if isinstance(vals, (list, tuple)) and vals and all(
            isinstance(v, (bytes, bytearray)) for v in vals):
        if any(len(v) != width for v in vals):
            raise error(f"{what}: each binary vector must be {width} bytes ({width * 8} bits)")
        return np.frombuffer(b"".join(vals), dtype=np.uint8).reshape(len(vals), width).copy()
    try:
        arr = np.asarray(vals)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != width or arr.dtype.kind not in "iu":
        raise error(f"{what}: binary vectors must be bytes of {width} (dim / 8) bytes each, "
                    "or rows of that many byte values (0 to 255)")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise error(f"{what}: binary vector bytes must be from 0 to 255")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _fixed_tensor(f: FieldSchema, vals: Any, n: int) -> torch.Tensor:
    if f.dtype == DataType.BINARY_VECTOR:
        rows = binary_rows(vals, f.width, f"field {f.name}", DataError)
        if rows.shape[0] != n:
            raise DataError(f"field {f.name}: expected {n} binary vectors, got {rows.shape[0]}")
        return torch.from_numpy(rows)
    if isinstance(vals, torch.Tensor):
        arr = vals.detach().cpu()
        if arr.dtype == torch.bfloat16:
            arr = arr.float()
        arr = arr.numpy()
    else:
        try:
            arr = np.asarray(vals)
        except (ValueError, TypeError):
            arr = None
        if arr is None or arr.dtype == object:
            _raise_shape(f, vals)
    kind = arr.dtype.kind
    if f.is_vector:
        if arr.ndim != 2 or arr.shape[1] != f.dim or arr.shape[0] != n:
            _raise_shape(f, vals)
        if kind not in "iuf":
            raise DataError(f"field {f.name}: vector values must be numbers, got {arr.dtype}")
        if f.dtype == DataType.INT8_VECTOR:
            return torch.from_numpy(int8_rows(arr, f"field {f.name}", DataError))
        if f.dtype == DataType.BFLOAT16_VECTOR:
            out = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(torch.bfloat16)
        else:
            np_dtype = np.float16 if f.dtype == DataType.FLOAT16_VECTOR else np.float32
            with np.errstate(over="ignore"):  # an overflow is an inf: refused just below
                out = torch.from_numpy(np.ascontiguousarray(arr, dtype=np_dtype))
        _check_finite(f.name, out)  # after the cast: 1e6 is inf as FLOAT16
        return out
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"field {f.name}: expected one {f.dtype.name} per row")
    if f.dtype == DataType.BOOL:
        if kind != "b":
            raise DataError(f"field {f.name}: BOOL values must be True/False, got {arr.dtype}")
    elif f.dtype in INT_TYPES:
        if kind not in "iu":
            raise DataError(f"field {f.name}: {f.dtype.name} values must be integers, got "
                            f"{_kind_name(arr)}")
        info = np.iinfo(torch.empty((), dtype=f.torch_dtype).numpy().dtype)
        if n and (arr.min() < info.min or arr.max() > info.max):
            raise DataError(f"field {f.name}: value out of range for {f.dtype.name} "
                            f"[{info.min}, {info.max}]")
    elif kind not in "iuf":
        raise DataError(f"field {f.name}: {f.dtype.name} values must be numbers, got "
                        f"{_kind_name(arr)}")
    np_dtype = torch.empty((), dtype=f.torch_dtype).numpy().dtype
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np_dtype))


def int8_rows(arr: np.ndarray, what: str, error: type) -> np.ndarray:
    """``arr`` as int8 (an INT8_VECTOR's rows or queries): integers from -128 to 127 only,
    never wrapped or rounded (``error`` naming ``what`` otherwise)."""
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise error(f"{what}: INT8_VECTOR values must be integers from -128 to 127")
    elif arr.dtype.kind not in "iu":
        raise error(f"{what}: INT8_VECTOR values must be integers, got {arr.dtype}")
    if arr.size and (arr.min() < -128 or arr.max() > 127):
        raise error(f"{what}: INT8_VECTOR values must be from -128 to 127")
    return np.ascontiguousarray(arr, dtype=np.int8)


def _check_finite(name: str, vectors: torch.Tensor) -> None:
    """Milvus refuses NaN and infinity in float vectors ("value 'NaN' is not a number or
    infinity"): no distance could rank such a row, and it would come back from no search."""
    if not vectors.numel() or math.isfinite(float(vectors.sum())):
        return  # one fast reduction; only a sum that is not finite needs a closer look
    bad = (~torch.isfinite(vectors)).any(1)
    if bool(bad.any()):  # else the sum overflowed: large values, all finite
        row = int(bad.nonzero()[0])
        raise DataError(f"field {name}: row {row} holds NaN or infinity (for FLOAT16 and "
                        "BFLOAT16, also any value beyond the type's range), which no distance "
                        "can rank: fix or leave out that row")


def _kind_name(arr: np.ndarray) -> str:
    return {"b": "bool", "U": "str", "S": "bytes", "f": "float", "O": "mixed values"}.get(
        arr.dtype.kind, str(arr.dtype))


def _raise_shape(f: FieldSchema, vals: Any) -> None:
    if f.is_vector:
        for i, v in enumerate(vals):
            try:
                length = len(v)
            except TypeError:
                raise DataError(f"field {f.name}: row {i} is not a vector") from None
            if length != f.dim:
                raise DataError(f"the dim ({length}) of field data({f.name}) is not equal to "
                                f"schema dim ({f.dim}): row {i} must have {f.dim} numbers")
        raise DataError(f"field {f.name}: vectors must be lists of {f.dim} numbers")
    raise DataError(f"field {f.name}: {f.dtype.name} values must be scalars of that type")


def _arrow_array(f: FieldSchema, vals: Any, mask: np.ndarray | None) -> pa.Array:
    if isinstance(vals, (np.ndarray, torch.Tensor)):
        vals = vals.tolist()
    if f.dtype == DataType.JSON:
        vals = [None if v is None else _dumps(v, f.name, i) for i, v in enumerate(vals)]
    try:
        arr = pa.array(vals, type=f.arrow_type())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
        what = "VARCHAR values must be str" if f.dtype == DataType.VARCHAR else str(e)
        raise DataError(f"field {f.name}: {what}") from None
    if f.dtype == DataType.VARCHAR:
        _check_length(f, arr)
    elif f.dtype == DataType.ARRAY:
        lengths = pc.list_value_length(arr)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > f.max_capacity:
            raise DataError(f"field {f.name}: array of length {longest} exceeds max_capacity "
                            f"{f.max_capacity}")
        if f.element_type == DataType.VARCHAR:
            _check_length(f, pc.list_flatten(arr))
    return arr


def _check_length(f: FieldSchema, arr: pa.Array) -> None:
    longest = pc.max(pc.binary_length(arr)).as_py() if len(arr) else None
    if longest is not None and longest > f.max_length:
        raise DataError(f"the length ({longest}) of varchar field ({f.name}) exceeds max "
                        f"length ({f.max_length}): shorten it or raise max_length")


def absent_column(f: FieldSchema, n: int) -> tuple[Any, torch.Tensor | None]:
    """(column, validity) of ``n`` rows stored before field ``f`` was added to the schema:
    its default value, or null. Made once per segment read, without a pass over rows."""
    one = Batch(1)
    _convert(f, [None], 1, one)
    col = one.cols[f.name]
    if isinstance(col, torch.Tensor):
        valid = one.valid.get(f.name)
        return col.expand(n).clone(), None if valid is None else valid.expand(n).clone()
    return pa.repeat(col[0], n), None


def check_default(f: FieldSchema) -> None:
    """Schema-time check that a default value fits its field."""
    if f.is_vector or f.dtype in (DataType.JSON, DataType.ARRAY):
        raise ParamError(f"field {f.name}: {f.dtype.name} cannot have a default_value")
    probe = Batch(1)
    try:
        _convert(f, [f.default_value], 1, probe)
    except DataError as e:
        raise ParamError(f"default_value of field {f.name} does not fit: {e.message}") from None


# -- batch operations -------------------------------------------------------------------
def first_duplicate(keys: Any) -> Any:
    """The smallest key that occurs more than once in ``keys`` (an int64 tensor or an Arrow
    string array), or None."""
    if isinstance(keys, torch.Tensor):
        s = torch.sort(keys).values
        dup = s[1:][s[1:] == s[:-1]]
        return int(dup[0]) if dup.numel() else None
    counts = pc.value_counts(keys)
    dup = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return pc.min(dup).as_py() if len(dup) else None


def concat(batches: Sequence[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    out = Batch(sum(b.num_rows for b in batches))
    for name in batches[0].cols:
        parts = [b.cols[name] for b in batches]
        if isinstance(parts[0], torch.Tensor):
            out.cols[name] = torch.cat(parts)
        else:
            out.cols[name] = pa.concat_arrays(parts)
    for name in batches[0].valid:
        out.valid[name] = torch.cat([b.valid[name] for b in batches])
    return out


def take(batch: Batch, idx: torch.Tensor) -> Batch:
    """Rows ``idx`` (an int64 CPU tensor) of ``batch``."""
    out = Batch(int(idx.numel()))
    np_idx = pa.array(idx.numpy())
    for name, col in batch.cols.items():
        out.cols[name] = col[idx] if isinstance(col, torch.Tensor) else col.take(np_idx)
    for name, v in batch.valid.items():
        out.valid[name] = v[idx]
    return out


def column_to_python(f: FieldSchema | None, col: Any, valid: torch.Tensor | None) -> list:
    """A column as a list of Python values (None where null)."""
    if isinstance(col, torch.Tensor):
        if f is not None and f.dtype == DataType.BINARY_VECTOR:  # bytes, as pymilvus's
            values = [row.tobytes() for row in col.contiguous().numpy()]
        else:
            values = (col.float() if col.dtype in (torch.float16, torch.bfloat16)
                      else col).tolist()
        if valid is not None and not bool(valid.all()):
            values = [v if ok else None for v, ok in zip(values, valid.tolist())]
        return values
    if f is not None and f.is_sparse:
        return sparse.to_python(col)
    values = col.to_pylist()
    if f is None or f.dtype == DataType.JSON:
        return [None if v is None else json.loads(v) for v in values]
    return values


# -- serialisation (WAL records) ---------------------------------------------------------
def batch_to_bytes(batch: Batch) -> bytes:
    tensors = {name: t.contiguous() for name, t in batch.cols.items()
               if isinstance(t, torch.Tensor)}
    tensors.update({name + _VALID_SUFFIX: v.contiguous() for name, v in batch.valid.items()})
    st = st_save(tensors) if tensors else b""
    arrow_cols = {name: c for name, c in batch.cols.items() if not isinstance(c, torch.Tensor)}
    ab = b""
    if arrow_cols:
        rb = pa.RecordBatch.from_arrays(list(arrow_cols.values()), names=list(arrow_cols))
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, rb.schema) as w:
            w.write_batch(rb)
        ab = sink.getvalue()
    return struct.pack("<QQ", batch.num_rows, len(st)) + st + ab


def batch_from_bytes(buf: bytes) -> Batch:
    n, st_len = struct.unpack_from("<QQ", buf)
    off = 16
    batch = Batch(n)
    if st_len:
        for name, t in st_load(bytes(buf[off:off + st_len])).items():
            if name.endswith(_VALID_SUFFIX):
                batch.valid[name[: -len(_VALID_SUFFIX)]] = t
            else:
                batch.cols[name] = t
    rest = buf[off + st_len:]
    if rest:
        rb = pa.ipc.open_stream(pa.py_buffer(rest)).read_next_batch()
        for name, col in zip(rb.schema.names, rb.columns):
            batch.cols[name] = col
    return batch

"""Translators between Milvus protobuf messages and the engine's values. Vectors move as
whole numpy buffers (no per-row Python); scalars as repeated fields."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from pymilvus.grpc_gen import common_pb2, schema_pb2

from ... import sparse
from ...columns import Columns
from ...errors import ParamError
from ...names import shown
from ...schema import DYNAMIC_FIELD, CollectionSchema, DataType, FieldSchema

_SCALAR_SLOT = {DataType.BOOL: "bool_data", DataType.INT8: "int_data",
                DataType.INT16: "int_data", DataType.INT32: "int_data",
                DataType.INT64: "long_data", DataType.FLOAT: "float_data",
                DataType.DOUBLE: "double_data", DataType.VARCHAR: "string_data",
                DataType.JSON: "json_data", DataType.ARRAY: "array_data"}


def kv(params: Any) -> dict[str, str]:
    return {p.key: p.value for p in params}


def alter_properties(req: Any, name: str, set_: Any, drop: Any) -> common_pb2.Status:
    """An Alter* request (``properties`` to set, ``delete_keys`` to drop) on ``name``."""
    if req.properties:
        set_(name, kv(req.properties))
    if req.delete_keys:
        drop(name, list(req.delete_keys))
    return common_pb2.Status()


def template_values(values: Any) -> dict | None:
    """``expr_template_values`` (name -> TemplateValue) as the engine's filter_params."""
    return {k: _template(v) for k, v in values.items()} or None


def _template(v: Any) -> Any:
    which = v.WhichOneof("val")
    if which is None:
        raise ParamError("a filter template value is empty")
    if which != "array_val":
        return getattr(v, which)
    return _template_array(v.array_val)


def _template_array(a: Any) -> list:
    which = a.WhichOneof("data")
    if which is None:
        return []
    data = getattr(a, which).data
    if which == "array_data":
        return [_template_array(x) for x in data]
    if which == "json_data":
        return [json_of(x, "a filter template value") for x in data]
    return list(data)


def int_of(value: Any, what: str) -> int:
    """An integer sent as text (``"10"``): 1100 naming ``what`` when it is not one."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise ParamError(f"{what} must be an integer, got {shown(value)}") from None


def json_of(raw: Any, what: str) -> Any:
    """JSON sent as text or bytes: 1100 naming ``what`` when it does not parse."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise ParamError(f"{what} is not valid JSON ({type(e).__name__})") from None


def _rows_of(flat: np.ndarray, dim: int, what: str) -> np.ndarray:
    """A flat vector buffer as (n, dim) rows: 1100 when dim is not positive or the length is
    not a multiple of it (an empty or cut vector)."""
    if dim <= 0 or flat.size % dim or flat.size == 0:
        raise ParamError(f"{what}: {flat.size} values do not make vectors of dim {dim}")
    return flat.reshape(-1, dim)


# -- schema -----------------------------------------------------------------------------
def schema_from_proto(s: schema_pb2.CollectionSchema) -> CollectionSchema:
    out = CollectionSchema(auto_id=False, enable_dynamic_field=s.enable_dynamic_field,
                           description=s.description)
    for f in s.fields:
        if f.is_dynamic or f.name == DYNAMIC_FIELD:
            out.enable_dynamic_field = True
            continue
        add_field_from_proto(out, f)
        if f.is_primary_key and f.autoID:
            out.auto_id = True
    out.auto_id = out.auto_id or s.autoID
    return out


def add_field_from_proto(out: CollectionSchema, f: schema_pb2.FieldSchema) -> FieldSchema:
    """Add the field ``f`` describes to ``out``; returns it."""
    tp = kv(f.type_params)
    default = None
    if f.HasField("default_value"):
        which = f.default_value.WhichOneof("data")
        default = getattr(f.default_value, which) if which else None
    out.add_field(f.name, f.data_type, is_primary=f.is_primary_key,
                  dim=int_of(tp["dim"], "dim") if "dim" in tp else None,
                  max_length=int_of(tp["max_length"], "max_length")
                  if "max_length" in tp else None,
                  element_type=f.element_type or None,
                  max_capacity=int_of(tp["max_capacity"], "max_capacity")
                  if "max_capacity" in tp else None,
                  nullable=f.nullable, default_value=default, description=f.description,
                  is_partition_key=f.is_partition_key)
    return out.fields[-1]


def _default_value(f: FieldSchema) -> schema_pb2.ValueField | None:
    v = f.default_value
    if v is None:
        return None
    if f.dtype == DataType.BOOL:
        return schema_pb2.ValueField(bool_data=v)
    if f.dtype in (DataType.INT8, DataType.INT16, DataType.INT32):
        return schema_pb2.ValueField(int_data=v)
    if f.dtype == DataType.INT64:
        return schema_pb2.ValueField(long_data=v)
    if f.dtype == DataType.FLOAT:
        return schema_pb2.ValueField(float_data=v)
    if f.dtype == DataType.DOUBLE:
        return schema_pb2.ValueField(double_data=v)
    return schema_pb2.ValueField(string_data=str(v))


def schema_to_proto(name: str, s: CollectionSchema) -> schema_pb2.CollectionSchema:
    fields = []
    for i, f in enumerate(s.fields):
        tp = [common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in
              (("dim", f.dim), ("max_length", f.max_length), ("max_capacity", f.max_capacity))
              if v is not None]
        fs = schema_pb2.FieldSchema(fieldID=100 + i, name=f.name, is_primary_key=f.is_primary,
                                    description=f.description, data_type=int(f.dtype),
                                    type_params=tp, autoID=f.is_primary and s.auto_id,
                                    element_type=int(f.element_type or 0), nullable=f.nullable,
                                    is_partition_key=f.is_partition_key)
        dv = _default_value(f)
        if dv is not None:
            fs.default_value.CopyFrom(dv)
        fields.append(fs)
    return schema_pb2.CollectionSchema(name=name, description=s.description, autoID=s.auto_id,
                                       fields=fields, enable_dynamic_field=s.enable_dynamic_field)


# -- FieldData -> engine columns ----------------------------------------------------------
def _scalar_values(fd: schema_pb2.FieldData, dtype: DataType) -> Any:
    slot = _SCALAR_SLOT[dtype]
    data = getattr(fd.scalars, slot).data
    if dtype == DataType.JSON:
        return [json_of(b, f"field {fd.field_name}") for b in data]
    if dtype == DataType.ARRAY:
        return [_array_values(a) for a in data]
    if dtype == DataType.VARCHAR:
        return list(data)
    return np.asarray(data)


def _array_values(sf: schema_pb2.ScalarField) -> list:
    which = sf.WhichOneof("data")
    return list(getattr(sf, which).data) if which else []


def _vector_values(fd: schema_pb2.FieldData, dtype: DataType) -> Any:
    v = fd.vectors
    dim = v.dim
    what = f"field {fd.field_name}"
    if dtype == DataType.FLOAT_VECTOR:
        return _rows_of(np.asarray(v.float_vector.data, dtype=np.float32), dim, what)
    if dtype == DataType.FLOAT16_VECTOR:
        if len(v.float16_vector) % 2:
            raise ParamError(f"{what}: a float16 vector buffer has an odd number of bytes")
        return _rows_of(np.frombuffer(v.float16_vector, dtype=np.float16), dim, what)
    if dtype == DataType.BFLOAT16_VECTOR:
        if len(v.bfloat16_vector) % 2:
            raise ParamError(f"{what}: a bfloat16 vector buffer has an odd number of bytes")
        raw = np.frombuffer(v.bfloat16_vector, dtype=np.uint16).astype(np.uint32) << 16
        return _rows_of(raw.view(np.float32), dim, what)
    if dtype == DataType.INT8_VECTOR:
        return _rows_of(np.frombuffer(v.int8_vector, dtype=np.int8), dim, what)
    if dtype == DataType.SPARSE_FLOAT_VECTOR:  # one row of uint32/float32 pairs each
        return list(v.sparse_float_vector.contents)
    if dtype == DataType.BINARY_VECTOR:  # dim is in bits, eight to a byte
        if dim % 8:
            raise ParamError(f"{what}: a binary vector's dim must be a multiple of 8, got {dim}")
        return _rows_of(np.frombuffer(v.binary_vector, dtype=np.uint8), dim // 8, what)
    raise ParamError(f"vector type {dtype.name} is not supported by Hotset")


def columns_from_fields(schema: CollectionSchema, fields_data: Any, num_rows: int) -> dict:
    """The columnar dict the engine's insert takes; dynamic keys spread out as columns."""
    cols: dict[str, Any] = Columns()
    for fd in fields_data:
        f = schema.field(fd.field_name)
        if fd.is_dynamic or fd.field_name == DYNAMIC_FIELD:
            metas = [json_of(b, "the dynamic field") for b in fd.scalars.json_data.data]
            if not all(isinstance(m, dict) for m in metas):
                raise ParamError("the dynamic field's rows must be JSON objects")
            keys = sorted({k for m in metas for k in m})
            for k in keys:
                cols[k] = [m.get(k) for m in metas]
            continue
        if f is None:
            raise ParamError(f"field {fd.field_name} is not in the collection's schema")
        if f.is_vector:
            if len(fd.valid_data) and not any(fd.valid_data):
                values: Any = []  # every row null: no vector data at all
            else:
                values = _vector_values(fd, f.dtype)
            if len(fd.valid_data) and not f.is_sparse:  # a nullable vector: only its
                values = [v.tobytes() if f.dtype == DataType.BINARY_VECTOR  # valid rows
                          else v.tolist() for v in values]
        else:
            values = _scalar_values(fd, f.dtype)
        if len(fd.valid_data):
            valid = list(fd.valid_data)
            if len(values) not in (sum(valid), len(valid)):
                raise ParamError(f"field {fd.field_name}: {len(values)} values for "
                                 f"{len(valid)} rows ({sum(valid)} valid)")
            it = iter(values)
            values = [next(it) if ok else None for ok in valid] if len(values) < len(valid) \
                else [v if ok else None for v, ok in zip(values, valid)]
        cols[f.name] = values
    return cols


# -- engine values -> FieldData ---------------------------------------------------------
def field_data(schema: CollectionSchema, name: str, values: list) -> schema_pb2.FieldData:
    f = schema.field(name)
    if f is None:  # a dynamic key, returned inside $meta
        raise AssertionError(name)
    fd = schema_pb2.FieldData(type=int(f.dtype), field_name=name,
                              field_id=100 + schema.names.index(name))
    if f.is_vector and f.nullable:  # as Milvus: valid_data for every row, vectors for valid
        fd.valid_data.extend([v is not None for v in values])
        values = [v for v in values if v is not None]
    if f.is_sparse:  # values: {dim: value} per row, sent as the wire form
        contents = sparse.to_wire(sparse.to_arrow(values, len(values), name, ParamError))
        fd.vectors.sparse_float_vector.contents.extend(contents)
        fd.vectors.sparse_float_vector.dim = 1 + max(
            (max(v) for v in values if v), default=-1)
        fd.vectors.dim = fd.vectors.sparse_float_vector.dim
        return fd
    if f.dtype == DataType.BINARY_VECTOR:  # values: bytes per row
        fd.vectors.dim = f.dim
        fd.vectors.binary_vector = b"".join(values)
        return fd
    if f.is_vector:
        arr = np.asarray(values, dtype=np.float32).reshape(-1, f.dim)
        fd.vectors.dim = f.dim
        if f.dtype == DataType.FLOAT_VECTOR:
            fd.vectors.float_vector.data.extend(arr.ravel().tolist())
        elif f.dtype == DataType.FLOAT16_VECTOR:
            fd.vectors.float16_vector = arr.astype(np.float16).tobytes()
        elif f.dtype == DataType.INT8_VECTOR:
            fd.vectors.int8_vector = arr.astype(np.int8).tobytes()
        else:
            fd.vectors.bfloat16_vector = (arr.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        return fd
    if f.nullable:
        fd.valid_data.extend([v is not None for v in values])
    slot = getattr(fd.scalars, _SCALAR_SLOT[f.dtype])
    if f.dtype == DataType.JSON:
        slot.data.extend([json.dumps(v).encode() for v in values])
    elif f.dtype == DataType.ARRAY:
        for v in values:
            slot.element_type = int(f.element_type)
            sf = schema_pb2.ScalarField()
            getattr(sf, _SCALAR_SLOT[f.element_type]).data.extend(v or [])
            slot.data.append(sf)
    else:
        zero = "" if f.dtype == DataType.VARCHAR else (False if f.dtype == DataType.BOOL else 0)
        slot.data.extend([zero if v is None else v for v in values])
    return fd


def rows_to_fields(schema: CollectionSchema, rows: list[dict], names: list[str],
                   dynamic_keys: bool) -> list[schema_pb2.FieldData]:
    out = [field_data(schema, n, [r.get(n) for r in rows]) for n in names]
    if dynamic_keys:
        known = set(schema.names)
        metas = [{k: v for k, v in r.items() if k not in known} for r in rows]
        fd = schema_pb2.FieldData(type=int(DataType.JSON), field_name=DYNAMIC_FIELD,
                                  is_dynamic=True)
        fd.scalars.json_data.data.extend([json.dumps(m).encode() for m in metas])
        out.append(fd)
    return out


def queries_from_placeholder(blob: bytes) -> Any:
    """The search data of a placeholder group: (nq, d) numpy rows, or for sparse vectors
    one wire-form ``bytes`` per query."""
    try:
        group = common_pb2.PlaceholderGroup.FromString(blob)
    except DecodeError:
        raise ParamError("placeholder_group is not a PlaceholderGroup message") from None
    if len(group.placeholders) != 1:
        raise ParamError(f"a search takes one placeholder of vectors, got "
                         f"{len(group.placeholders)}")
    ph = group.placeholders[0]
    values = list(ph.values)
    width = {common_pb2.FloatVector: 4, common_pb2.Float16Vector: 2,
             common_pb2.BFloat16Vector: 2, common_pb2.Int8Vector: 1,
             common_pb2.BinaryVector: 1}.get(ph.type)
    if width is not None:
        if not values:
            return np.empty((0, 0), dtype=np.float32)  # the engine says nq is 0
        sizes = {len(v) for v in values}
        if len(sizes) != 1 or sizes.pop() % width:
            raise ParamError("search vectors must all have the same dim, in whole elements")
    if ph.type == common_pb2.SparseFloatVector:
        if not values:
            return np.empty((0, 0), dtype=np.float32)  # the engine says nq is 0
        return values
    if ph.type == common_pb2.FloatVector:
        return np.frombuffer(b"".join(values), dtype=np.float32).reshape(len(values), -1).copy()
    if ph.type == common_pb2.Float16Vector:
        return np.frombuffer(b"".join(values), dtype=np.float16).reshape(
            len(values), -1).astype(np.float32)
    if ph.type == common_pb2.BFloat16Vector:
        raw = np.frombuffer(b"".join(values), dtype=np.uint16).astype(np.uint32) << 16
        return raw.view(np.float32).reshape(len(values), -1)
    if ph.type == common_pb2.Int8Vector:
        return np.frombuffer(b"".join(values), dtype=np.int8).reshape(len(values), -1).copy()
    if ph.type == common_pb2.BinaryVector:
        return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), -1).copy()
    raise ParamError("only float, float16, bfloat16, int8, binary and sparse float vectors "
                     "can be searched with Hotset")

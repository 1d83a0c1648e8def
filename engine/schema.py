"""Collection schema: data types, field specs, validation, (de)serialisation.

Rules enforced here (each violation is a 1100 ParamError that says the fix):
- field names are identifiers (letter or ``_`` first, then letters, digits, ``_``), unique;
- exactly one primary key, INT64 or VARCHAR; ``auto_id`` only with an INT64 key;
- VARCHAR needs ``max_length`` (1..65535 bytes); dense vectors need ``dim`` (1..32768), a
  SPARSE_FLOAT_VECTOR has none;
- ARRAY needs a scalar ``element_type`` and ``max_capacity`` (1..4096);
- at least one vector field; the primary key cannot be nullable; a nullable vector field's
  null rows are in no search result.
Fixed-width fields (numbers, bools, vectors, an INT64 key) are stored and made resident as
torch tensors; variable-width fields (VARCHAR, JSON, ARRAY, SPARSE_FLOAT_VECTOR, the dynamic field
``$meta``) as Arrow arrays.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import torch

from .errors import ParamError
from .names import check_name, shown
from .sparse import ARROW_TYPE as SPARSE_ARROW_TYPE

DYNAMIC_FIELD = "$meta"
AUTO_KEY_CHARS = 19  # the decimal text of a positive int64, an auto_id VARCHAR key


class DataType(enum.IntEnum):
    """Milvus data types, with Milvus's numeric values."""

    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    UNKNOWN = 999

    def __repr__(self) -> str:
        return f"<DataType.{self.name}: {self.value}>"


INT_TYPES = {DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64}
FLOAT_TYPES = {DataType.FLOAT, DataType.DOUBLE}
VECTOR_TYPES = {DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR,
                DataType.INT8_VECTOR, DataType.BINARY_VECTOR, DataType.SPARSE_FLOAT_VECTOR}
SCALAR_ELEMENT_TYPES = INT_TYPES | FLOAT_TYPES | {DataType.BOOL, DataType.VARCHAR}

TORCH_DTYPE: dict[DataType, torch.dtype] = {
    DataType.BOOL: torch.bool,
    DataType.INT8: torch.int8,
    DataType.INT16: torch.int16,
    DataType.INT32: torch.int32,
    DataType.INT64: torch.int64,
    DataType.FLOAT: torch.float32,
    DataType.DOUBLE: torch.float64,
    DataType.FLOAT_VECTOR: torch.float32,
    DataType.FLOAT16_VECTOR: torch.float16,
    DataType.BFLOAT16_VECTOR: torch.bfloat16,
    DataType.INT8_VECTOR: torch.int8,
    DataType.BINARY_VECTOR: torch.uint8,  # dim bits, eight to a byte
}

ARROW_ELEMENT: dict[DataType, pa.DataType] = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
}


def _to_dtype(value: Any, what: str) -> DataType:
    if isinstance(value, DataType):
        return value
    try:
        if isinstance(value, str):
            return DataType[value.upper()]
        return DataType(int(value))
    except (KeyError, ValueError, TypeError):
        raise ParamError(f"{what} {shown(value)} is not a data type Hotset supports; use one "
                         "of DataType's members") from None


@dataclass(frozen=True, slots=True)
class FieldSchema:
    name: str
    dtype: DataType
    is_primary: bool = False
    dim: int | None = None
    max_length: int | None = None
    element_type: DataType | None = None
    max_capacity: int | None = None
    nullable: bool = False
    default_value: Any = None
    description: str = ""
    is_partition_key: bool = False

    def __post_init__(self) -> None:
        check_name("field", self.name)
        t = self.dtype
        if self.is_partition_key:
            if t not in (DataType.INT64, DataType.VARCHAR) or self.is_primary or self.nullable:
                raise ParamError(f"field {self.name}: a partition key must be a non-nullable "
                                 "INT64 or VARCHAR field other than the primary key")
        if t in (DataType.NONE, DataType.UNKNOWN, DataType.STRING):
            raise ParamError(f"field {self.name}: data type {t.name} is not supported by Hotset")
        if t == DataType.SPARSE_FLOAT_VECTOR:
            if self.dim is not None:
                raise ParamError(f"field {self.name}: a SPARSE_FLOAT_VECTOR has no dim (its "
                                 "dimensions are any integers below 2**32 - 1): leave dim out")
            if self.default_value is not None:
                raise ParamError(f"field {self.name}: a vector field cannot have a default "
                                 "value (a nullable one reads null where none was given)")
        elif t in VECTOR_TYPES:
            if not isinstance(self.dim, int) or not 1 <= self.dim <= 32768:
                raise ParamError(f"field {self.name}: {t.name} needs dim between 1 and 32768, "
                                 f"got {self.dim!r}")
            if t == DataType.BINARY_VECTOR and self.dim % 8:
                raise ParamError(f"field {self.name}: BINARY_VECTOR dim must be a multiple of "
                                 f"8, got {self.dim}")
            if self.default_value is not None:
                raise ParamError(f"field {self.name}: a vector field cannot have a default "
                                 "value (a nullable one reads null where none was given)")
        elif self.dim is not None:
            raise ParamError(f"field {self.name}: dim is only for vector fields")
        if t == DataType.VARCHAR or (t == DataType.ARRAY and self.element_type == DataType.VARCHAR):
            if not isinstance(self.max_length, int) or not 1 <= self.max_length <= 65535:
                raise ParamError(f"field {self.name}: VARCHAR needs max_length between 1 and "
                                 f"65535, got {self.max_length!r}")
        if t == DataType.ARRAY:
            if self.element_type not in SCALAR_ELEMENT_TYPES:
                raise ParamError(f"field {self.name}: ARRAY needs element_type, one of "
                                 f"{sorted(e.name for e in SCALAR_ELEMENT_TYPES)}")
            if not isinstance(self.max_capacity, int) or not 1 <= self.max_capacity <= 4096:
                raise ParamError(f"field {self.name}: ARRAY needs max_capacity between 1 and "
                                 f"4096, got {self.max_capacity!r}")
        if self.is_primary:
            if t not in (DataType.INT64, DataType.VARCHAR):
                raise ParamError(f"field {self.name}: the primary key must be INT64 or VARCHAR, "
                                 f"not {t.name}")
            if self.nullable or self.default_value is not None:
                raise ParamError(f"field {self.name}: the primary key cannot be nullable or "
                                 "have a default value")

    # -- storage classes -------------------------------------------------------------
    @property
    def is_vector(self) -> bool:
        return self.dtype in VECTOR_TYPES

    @property
    def is_sparse(self) -> bool:
        return self.dtype == DataType.SPARSE_FLOAT_VECTOR

    @property
    def is_numeric(self) -> bool:
        return self.dtype in INT_TYPES | FLOAT_TYPES

    @property
    def is_fixed(self) -> bool:
        """Stored as a torch tensor (safetensors shard) rather than an Arrow array."""
        return self.dtype in TORCH_DTYPE

    @property
    def width(self) -> int:
        """Stored elements per row of a vector field: dim, or dim / 8 bytes for binary."""
        return self.dim // 8 if self.dtype == DataType.BINARY_VECTOR else self.dim

    @property
    def torch_dtype(self) -> torch.dtype:
        return TORCH_DTYPE[self.dtype]

    @property
    def row_bytes(self) -> int:
        """Bytes one row of a fixed-width field takes (vectors: dim elements)."""
        size = torch.empty((), dtype=self.torch_dtype).element_size()
        return size * (self.width if self.is_vector else 1)

    def arrow_type(self) -> pa.DataType:
        if self.dtype == DataType.VARCHAR:
            return pa.string()
        if self.dtype == DataType.JSON:
            return pa.string()  # JSON text; parsed on demand
        if self.dtype == DataType.ARRAY:
            return pa.list_(ARROW_ELEMENT[self.element_type])
        if self.dtype == DataType.SPARSE_FLOAT_VECTOR:
            return SPARSE_ARROW_TYPE
        raise AssertionError(f"{self.dtype} is fixed-width")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dtype"] = self.dtype.name
        d["element_type"] = self.element_type.name if self.element_type is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FieldSchema":
        d = dict(d)
        d["dtype"] = DataType[d["dtype"]]
        if d.get("element_type") is not None:
            d["element_type"] = DataType[d["element_type"]]
        return cls(**d)

    def describe(self, field_id: int) -> dict:
        params: dict[str, Any] = {}
        if self.dim is not None:
            params["dim"] = self.dim
        if self.max_length is not None:
            params["max_length"] = self.max_length
        if self.max_capacity is not None:
            params["max_capacity"] = self.max_capacity
        out: dict[str, Any] = {"field_id": field_id, "name": self.name,
                               "description": self.description, "type": self.dtype,
                               "params": params}
        if self.element_type is not None:
            out["element_type"] = self.element_type
        if self.is_primary:
            out["is_primary"] = True
        if self.nullable:
            out["nullable"] = True
        if self.default_value is not None:
            out["default_value"] = self.default_value
        if self.is_partition_key:
            out["is_partition_key"] = True
        return out


class CollectionSchema:
    """A builder like pymilvus's: ``add_field`` returns the schema so calls can chain."""

    def __init__(self, auto_id: bool = False, enable_dynamic_field: bool = False,
                 description: str = "", fields: list[FieldSchema] | None = None) -> None:
        self.auto_id = bool(auto_id)
        self.enable_dynamic_field = bool(enable_dynamic_field)
        self.description = description
        self.fields: list[FieldSchema] = []
        for f in fields or []:
            self._append(f)

    def add_field(self, field_name: str, datatype: Any, is_primary: bool = False, *,
                  dim: int | None = None, max_length: int | None = None,
                  element_type: Any = None, max_capacity: int | None = None,
                  nullable: bool = False, default_value: Any = None, description: str = "",
                  auto_id: bool | None = None, **kwargs: Any) -> "CollectionSchema":
        is_partition_key = bool(kwargs.pop("is_partition_key", False))
        if kwargs:
            raise ParamError(f"add_field({field_name!r}): unknown arguments {sorted(kwargs)}")
        if auto_id is not None and is_primary:
            self.auto_id = bool(auto_id)
        f = FieldSchema(
            name=field_name, dtype=_to_dtype(datatype, "datatype"), is_primary=bool(is_primary),
            dim=None if dim is None else int(dim),
            max_length=None if max_length is None else int(max_length),
            element_type=None if element_type is None else _to_dtype(element_type, "element_type"),
            max_capacity=None if max_capacity is None else int(max_capacity),
            nullable=bool(nullable), default_value=default_value, description=description,
            is_partition_key=is_partition_key)
        self._append(f)
        return self

    def add(self, f: FieldSchema) -> None:
        """Add ``f`` to the schema of an existing collection (``add_collection_field``):
        rows stored before it read as its default or null, so it must be nullable, and it
        cannot be a primary key or a vector field."""
        if f.is_primary:
            raise ParamError(f"field {f.name}: the primary key cannot be added to an existing "
                             "collection")
        if f.is_vector:
            raise ParamError(f"field {f.name}: adding a vector field to an existing collection "
                             "is not supported by Hotset: create a new collection with it")
        if not f.nullable:
            raise ParamError(f"added field must be nullable, please check it, field name = "
                             f"{f.name}: pass nullable=True (and default_value= for a value "
                             "other than null)")
        self._append(f)
        self.validate()

    def _append(self, f: FieldSchema) -> None:
        if f.is_partition_key and self.partition_key is not None:
            raise ParamError(f"field {f.name}: a collection has at most one partition key, and "
                             f"{self.partition_key.name} already is")
        if any(g.name == f.name for g in self.fields):
            raise ParamError(f"duplicated field name {f.name!r}: each field needs its own name")
        if f.is_primary and any(g.is_primary for g in self.fields):
            raise ParamError(f"field {f.name}: a collection has exactly one primary key, and "
                             f"{self.primary.name} already is")
        self.fields.append(f)

    # -- lookups ---------------------------------------------------------------------
    @property
    def partition_key(self) -> FieldSchema | None:
        """The partition key field, or None. Milvus hashes rows into partitions by it; on
        Hotset every row stays in one partition (results are the same), and partitions
        cannot be named by hand, as in Milvus."""
        return next((f for f in self.fields if f.is_partition_key), None)

    @property
    def primary(self) -> FieldSchema:
        for f in self.fields:
            if f.is_primary:
                return f
        raise ParamError("schema has no primary key: add_field(..., is_primary=True)")

    @property
    def vector_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.is_vector]

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def validate(self) -> None:
        if not self.fields:
            raise ParamError("schema has no fields: add a primary key and a vector field")
        pk = self.primary
        if self.auto_id and pk.dtype == DataType.VARCHAR and pk.max_length < AUTO_KEY_CHARS:
            raise ParamError(f"auto_id keys of VARCHAR field {pk.name} are up to "
                             f"{AUTO_KEY_CHARS} characters: set max_length to at least "
                             f"{AUTO_KEY_CHARS}")
        if not self.vector_fields:
            raise ParamError("schema has no vector field: add a FLOAT_VECTOR field with dim=...")
        for f in self.fields:
            if f.default_value is not None:
                from .columns import check_default  # local: columns imports schema

                check_default(f)

    def to_dict(self) -> dict:
        return {"auto_id": self.auto_id, "enable_dynamic_field": self.enable_dynamic_field,
                "description": self.description, "fields": [f.to_dict() for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict) -> "CollectionSchema":
        return cls(auto_id=d["auto_id"], enable_dynamic_field=d["enable_dynamic_field"],
                   description=d.get("description", ""),
                   fields=[FieldSchema.from_dict(f) for f in d["fields"]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CollectionSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CollectionSchema({self.to_dict()!r})"


__all__ = ["DataType", "FieldSchema", "CollectionSchema", "DYNAMIC_FIELD"]

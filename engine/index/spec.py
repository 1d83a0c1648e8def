"""Index specifications (what ``prepare_index_params().add_index`` builds).

Vector indexes: ``FLAT`` (exact), ``IVF_FLAT`` (``nlist``), ``IVF_SQ8`` / ``IVF_PQ``
(``quant.py``), ``HNSW`` and ``AUTOINDEX`` (Hotset picks by size when the index is
created: FLAT under a million rows, else IVF_FLAT with nlist 1024),
with metric ``L2``, ``IP`` or ``COSINE``; on a BINARY_VECTOR field ``BIN_FLAT``, ``BIN_IVF_FLAT`` (and
``AUTOINDEX``, which is BIN_FLAT) with ``HAMMING`` or ``JACCARD``; on a SPARSE_FLOAT_VECTOR
field ``SPARSE_INVERTED_INDEX`` / ``SPARSE_WAND`` (and ``AUTOINDEX``) with ``IP``. Scalar fields and JSON paths take Milvus's scalar
index types (``scalar.py``: what each makes resident and how filters use it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ParamError
from ..names import check_name
from ..schema import CollectionSchema
from . import registry, scalar

METRIC_TYPES = ("L2", "IP", "COSINE")
BINARY_METRIC_TYPES = ("HAMMING", "JACCARD")
DISTANCE_METRICS = ("L2", "HAMMING", "JACCARD")  # smaller is better (the rest: similarity)
METRICS_OF = {"dense": (METRIC_TYPES, "COSINE"), "binary": (BINARY_METRIC_TYPES, "HAMMING"),
              "sparse": (("IP",), "IP")}  # (metrics a field of each kind takes, default)


@dataclass(frozen=True, slots=True)
class IndexSpec:
    field_name: str
    index_name: str = ""
    index_type: str = "AUTOINDEX"
    metric_type: str | None = None
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.field_name:
            raise ParamError("add_index needs field_name")
        check_name("field", self.field_name)
        if not isinstance(self.params, dict):
            raise ParamError(f"index params must be a dict, got {type(self.params).__name__}")
        default = scalar.default_name(self.field_name, self.params)
        if not self.index_name:
            object.__setattr__(self, "index_name", default)
        if self.index_name != default:
            check_name("index", self.index_name)
        for what in ("index_type", "metric_type"):
            value = getattr(self, what)
            if value is not None and not isinstance(value, str):
                raise ParamError(f"{what} must be a string, got {type(value).__name__}")
        object.__setattr__(self, "index_type", (self.index_type or "").upper())
        if self.metric_type:
            object.__setattr__(self, "metric_type", self.metric_type.upper())

    def checked(self, schema: CollectionSchema) -> "IndexSpec":
        """Validate against the schema; a vector index gets its default metric."""
        if "mmap.enabled" in self.params:
            raise ParamError("mmap.enabled is not supported by Hotset: a loaded index lives "
                             "in device memory; leave it out")
        f = schema.field(self.field_name)
        if f is not None and f.is_vector:
            kind = registry.kind_of(f.dtype)
            itype = self.index_type or "AUTOINDEX"
            kinds = registry.vector_types(kind)
            if itype not in kinds:
                raise ParamError(f"index type {itype} is not supported on {f.dtype.name} field "
                                 f"{self.field_name}; use one of {list(kinds)}")
            metrics, default = METRICS_OF[kind]
            metric = self.metric_type or default
            if metric == "BM25" and kind == "sparse":
                raise ParamError("metric type BM25 needs a BM25 function that tokenises a "
                                 "text field, which Hotset does not have: index sparse "
                                 "vectors you compute with metric IP")
            if metric not in metrics:
                raise ParamError(f"metric type {metric} is not supported on {f.dtype.name} "
                                 f"field {self.field_name}; use one of {list(metrics)}")
            params = dict(self.params)
            if itype != "AUTOINDEX":
                index = registry.get(itype)
                params = index.check_field(index.check_params(params), f.dtype.name, f.dim)
                params = _resident_dtype(params, index, f.dtype.name)
            return IndexSpec(self.field_name, self.index_name, itype, metric, params)
        if self.metric_type:
            raise ParamError(f"metric_type applies to vector fields; {self.field_name} is a "
                             "scalar field: leave metric_type out")
        itype, params = scalar.check(self, schema)
        return IndexSpec(self.field_name, self.index_name, itype, None, params)

    def to_dict(self) -> dict:
        return {"field_name": self.field_name, "index_name": self.index_name,
                "index_type": self.index_type, "metric_type": self.metric_type,
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> "IndexSpec":
        return cls(d["field_name"], d["index_name"], d["index_type"], d["metric_type"],
                   dict(d["params"]))


RESIDENT_DTYPES = ("float32", "float16")


def _resident_dtype(params: dict, index: registry.VectorIndex, dtype_name: str) -> dict:
    """Hotset's ``resident_dtype`` (not a Milvus parameter): "float16" keeps a
    FLOAT_VECTOR field's sealed rows on the device in half precision (half the bytes; the
    stored rows stay float32 and are what reads return); "float32" is the default."""
    if "resident_dtype" not in params:
        return params
    rd = params["resident_dtype"]
    if not index.half_rows or dtype_name != "FLOAT_VECTOR":
        raise ParamError(f"resident_dtype is Hotset's option for FLAT and IVF_FLAT on "
                         f"FLOAT_VECTOR fields; not for {index.name} on {dtype_name}: "
                         "leave it out")
    if rd not in RESIDENT_DTYPES:
        raise ParamError(f"resident_dtype must be one of {list(RESIDENT_DTYPES)}, got {rd!r}")
    return params if rd == "float16" else {k: v for k, v in params.items()
                                           if k != "resident_dtype"}


class IndexParams:
    """Collects ``add_index`` calls, as pymilvus's ``IndexParams`` does."""

    def __init__(self) -> None:
        self._specs: list[IndexSpec] = []

    def add_index(self, field_name: str, index_type: str = "", index_name: str = "",
                  metric_type: str | None = None, params: dict | None = None,
                  **kwargs: Any) -> None:
        params = dict(params or {})
        params.update(kwargs.pop("extra_params", {}) or {})
        if kwargs:
            params.update(kwargs)
        self._specs.append(IndexSpec(field_name, index_name, index_type, metric_type, params))

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

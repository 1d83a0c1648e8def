"""Scalar and JSON-path indexes: which ones a field takes, and what they make resident.

A scalar index is built per sealed segment from the segment's resident column whenever the
segment becomes resident (a load, a seal while loaded, a ``create_index`` on a loaded
collection), registered with the allocator as part ``index/<index name>``, and used by
filters (``expr/evaluate.py``) in place of a scan of the column:

- **sorted** (``STL_SORT``, ``INVERTED``, ``AUTOINDEX``, ``BITMAP`` on a numeric field):
  the column's non-null, non-NaN values sorted, with their row numbers. A comparison with a literal or
  an ``in`` list is a binary search, and the matching rows are scattered into the mask; a
  match wider than ``SCATTER_MAX`` of the rows compares the column instead (cheaper).
- **dictionary** (``INVERTED``, ``BITMAP``, ``TRIE``, ``STL_SORT``, ``AUTOINDEX`` on
  VARCHAR): the distinct values and a per-row int32 code. A
  predicate (``==``, ``<``, ``in``, ``like``) is evaluated once per distinct value, then
  gathered by code.
- **JSON path** (``INVERTED`` or ``AUTOINDEX`` with ``json_path`` and ``json_cast_type``, on
  a JSON field or a dynamic-field key): the typed columns of that path for the cast type
  (``DOUBLE``: numbers; ``VARCHAR``: strings; ``BOOL``: bools; ``ARRAY_*``: lists;
  ``JSON``: all of them), extracted at load instead of at the first filter. A filter that
  needs a type the index does not hold (a string comparison on a ``DOUBLE`` path) reads the
  path's read-path cache as without the index, so results never depend on the cast type.
- **none** (``BOOL`` fields, ``ARRAY`` fields): accepted and listed, nothing resident: a bool
  column is already its own bitmap, and array filters run vectorised over the resident
  list column.

Growing segments are not indexed (as in Milvus): filters scan them.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..errors import FieldNotFound, ParamError
from ..expr import ast
from ..expr.bounds import int_comparison, int_values
from ..expr.parser import parse
from ..names import DEFAULT_JSON_INDEX
from ..schema import DYNAMIC_FIELD, FLOAT_TYPES, INT_TYPES, CollectionSchema, DataType

SCATTER_MAX = 1 / 8  # above this share of rows, comparing the column beats scattering rows
INDEX_PART = "index/"  # memory_info part of an index: index/<index name>
JSON_CAST_TYPES = {"DOUBLE": ("num", "is_num"), "VARCHAR": ("str_",),
                   "BOOL": ("bool_", "is_bool"), "ARRAY_DOUBLE": ("lists",),
                   "ARRAY_VARCHAR": ("lists",), "ARRAY_BOOL": ("lists",),
                   "JSON": ("num", "is_num", "str_", "bool_", "is_bool", "lists")}
_NUMERIC = INT_TYPES | FLOAT_TYPES
_ALLOWED = {  # index type -> the field types it applies to
    "STL_SORT": _NUMERIC | {DataType.VARCHAR},
    "INVERTED": _NUMERIC | {DataType.VARCHAR, DataType.BOOL, DataType.ARRAY, DataType.JSON},
    "AUTOINDEX": _NUMERIC | {DataType.VARCHAR, DataType.BOOL, DataType.ARRAY, DataType.JSON},
    "BITMAP": INT_TYPES | {DataType.VARCHAR, DataType.BOOL, DataType.ARRAY},
    "TRIE": {DataType.VARCHAR},
}
SCALAR_INDEX_TYPES = tuple(_ALLOWED)


@dataclass(frozen=True, slots=True)
class Target:
    """What one scalar index covers and how: ``kind`` is sorted, dictionary, path or none;
    ``field`` the stored column ($meta for a dynamic key); ``path`` a JSON path."""

    kind: str
    field: str
    path: tuple = ()
    cast: str = ""


def check(spec: Any, schema: CollectionSchema) -> tuple[str, dict]:
    """(index type, params) of a scalar or JSON-path index ``spec``, validated against the
    schema (ParamError / FieldNotFound naming what to change)."""
    itype = spec.index_type or "AUTOINDEX"
    f = schema.field(spec.field_name)
    params = dict(spec.params)
    if f is None and not ("json_path" in params and schema.enable_dynamic_field):
        raise FieldNotFound(spec.field_name, "index params")
    dtype = DataType.JSON if f is None else f.dtype
    if itype not in _ALLOWED:
        raise ParamError(f"index type {itype} is not supported on scalar field "
                         f"{spec.field_name}; use one of {list(SCALAR_INDEX_TYPES)}")
    if dtype not in _ALLOWED[itype]:
        fits = [t for t, types in _ALLOWED.items() if dtype in types]
        raise ParamError(f"{itype} index is not supported on {dtype.name} field "
                         f"{spec.field_name}: use one of {fits}")
    if itype == "BITMAP" and f is not None and f.is_primary:
        raise ParamError(f"BITMAP index cannot be built on primary key field "
                         f"{spec.field_name}: use INVERTED or STL_SORT")
    if f is not None and f.dtype == DataType.ARRAY and itype == "BITMAP" \
            and f.element_type in FLOAT_TYPES:
        raise ParamError(f"BITMAP index is not supported on ARRAY of {f.element_type.name}: "
                         "use INVERTED")
    if "json_cast_function" in params:
        raise ParamError("json_cast_function is not supported by Hotset: store the values "
                         "with the JSON type you filter on, and leave json_cast_function out")
    if dtype == DataType.JSON:
        cast = params.get("json_cast_type")
        if not isinstance(cast, str) or not cast:
            raise ParamError(f"json index must specify json_cast_type on field "
                             f"{spec.field_name}: one of {list(JSON_CAST_TYPES)}")
        if cast.upper() not in JSON_CAST_TYPES:
            raise ParamError(f"json_cast_type {cast} is not supported: use one of "
                             f"{list(JSON_CAST_TYPES)}")
        params["json_cast_type"] = cast.upper()
        text = params.get("json_path", spec.field_name)
        json_path(text, spec.field_name)  # the error names what is wrong with it
        params["json_path"] = text
    elif "json_path" in params or "json_cast_type" in params:
        raise ParamError(f"json_path and json_cast_type apply to JSON fields; "
                         f"{spec.field_name} is {dtype.name}: leave them out")
    return itype, params


@functools.lru_cache(maxsize=1024)  # parsed at every segment load: once per path is enough
def _parsed(text: str) -> ast.Node | None:
    try:
        return parse(text)
    except ParamError:
        return None


def json_path(text: Any, field_name: str) -> tuple:
    """The keys of ``json_path`` (``meta['a'][0]``, or ``color`` for a dynamic key), which
    must start at ``field_name``."""
    if not isinstance(text, str) or not text.strip():
        raise ParamError("json_path must be a non-empty string like my_json['a']['b']")
    node = _parsed(text)
    if not isinstance(node, ast.FieldRef):
        raise ParamError(f"json_path {text!r} is not a path: write it as "
                         f"{field_name}['key']['key']")
    if node.name != field_name:
        raise ParamError(f"json_path {text!r} must start at field {field_name}")
    return node.path


def covers(field_name: str, params: dict) -> tuple:
    """What an index covers, for the one-index-per-target rule: the field, and for a
    JSON-path index its path and cast type (one JSON field takes many path indexes)."""
    text = params.get("json_path")
    if not isinstance(text, str):
        return (field_name,)
    return field_name, json_path(text, field_name), params.get("json_cast_type")


def default_name(field_name: str, params: dict) -> str:
    """Milvus's default name of a JSON-path index: the field and the path's keys joined by
    ``/`` (``my_json/a/b``); the field name for every other index."""
    text = params.get("json_path")
    if not isinstance(text, str):
        return field_name
    try:
        path = json_path(text, field_name)
    except ParamError:
        return field_name  # refused with a clear error once the index is checked
    name = "/".join([field_name, *map(str, path)])
    if path and not DEFAULT_JSON_INDEX.fullmatch(name):
        raise ParamError(f"the JSON path {text!r} has keys an index name cannot hold: name "
                         "the index with index_name=")
    return name


def target(entry: dict, schema: CollectionSchema) -> Target:
    """What a scalar index entry of the manifest covers on this schema."""
    f = schema.field(entry["field_name"])
    params = entry["params"]
    if f is None or f.dtype == DataType.JSON:
        field = DYNAMIC_FIELD if f is None else f.name
        path = json_path(params.get("json_path", entry["field_name"]), entry["field_name"])
        if f is None:
            path = (entry["field_name"], *path)
        return Target("path", field, path, params["json_cast_type"])
    if f.dtype in (DataType.BOOL, DataType.ARRAY):
        return Target("none", f.name)
    if f.dtype == DataType.VARCHAR:
        return Target("dictionary", f.name)
    return Target("sorted", f.name)


# -- resident structures -------------------------------------------------------------------
class SortedIndex:
    """A numeric column's non-null, non-NaN values in order, with their row numbers."""

    def __init__(self, col: torch.Tensor, valid: torch.Tensor | None) -> None:
        self.n = col.numel()
        keep = ~torch.isnan(col) if col.dtype.is_floating_point else None
        if valid is not None:
            keep = valid if keep is None else keep & valid
        rows = torch.arange(self.n, device=col.device)
        if keep is not None:
            rows, col = rows[keep], col[keep]
        self.values, order = torch.sort(col, stable=True)
        self.rows = rows[order]

    def objects(self) -> list[torch.Tensor]:
        return [self.values, self.rows]

    def _position(self, x: Any, side: str) -> int:
        t = torch.tensor([x], dtype=self.values.dtype, device=self.values.device)
        return int(torch.searchsorted(self.values, t, side=side))

    def _span(self, op: str, x: Any) -> tuple[int, int] | None:
        """The range of sorted positions where ``value <op> x`` holds (None for !=)."""
        if op == "!=":
            return None
        m = self.values.numel()
        if not self.values.dtype.is_floating_point:
            exact = int_comparison(op, x, self.values.dtype)
            if isinstance(exact, bool):
                return (0, m) if exact else (0, 0)
            op, x = exact
        elif isinstance(x, float) and math.isnan(x):
            return 0, 0
        if op == "==":
            return self._position(x, "left"), self._position(x, "right")
        if op in (">", ">="):
            return self._position(x, "right" if op == ">" else "left"), m
        return 0, self._position(x, "left" if op == "<" else "right")

    def _scatter(self, spans: list[tuple[int, int]]) -> torch.Tensor | None:
        if sum(hi - lo for lo, hi in spans) > SCATTER_MAX * self.n:
            return None
        out = torch.zeros(self.n, dtype=torch.bool, device=self.values.device)
        for lo, hi in spans:
            out[self.rows[lo:hi]] = True
        return out

    def compare(self, op: str, x: Any) -> torch.Tensor | None:
        """Rows where ``value <op> x`` holds, or None when a scan of the column is cheaper."""
        span = self._span(op, x)
        return None if span is None else self._scatter([span])

    def isin(self, values: tuple) -> torch.Tensor | None:
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not self.values.dtype.is_floating_point:
            nums = int_values(nums, self.values.dtype)
        return self._scatter([self._span("==", v) for v in sorted(set(nums))])


class DictionaryIndex:
    """Distinct values (an Arrow array, host memory) and each row's code (int32 on the
    device; a null row has code ``len(dictionary)``, whose slot is always false)."""

    def __init__(self, col: pa.Array) -> None:
        enc = col.dictionary_encode()
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        self.dictionary = enc.dictionary
        d = len(self.dictionary)
        codes = enc.indices.fill_null(d).to_numpy(zero_copy_only=False).astype(np.int32)
        self.device = torch.device("cpu")
        self.codes = torch.from_numpy(codes)
        self.nulls = enc.indices.null_count > 0

    def to(self, device: torch.device) -> "DictionaryIndex":
        self.codes = self.codes.to(device)
        self.device = device
        return self

    def objects(self) -> list[Any]:
        return [self.codes, self.dictionary]

    @property
    def known(self) -> torch.Tensor | None:
        """Rows whose value is not null (None: no row is null)."""
        return self.codes != len(self.dictionary) if self.nulls else None

    def gather(self, table: pa.Array) -> torch.Tensor:
        """Rows whose value satisfies a predicate given per distinct value (null: false)."""
        per_value = table.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        lookup = torch.from_numpy(np.append(per_value, False)).to(self.device)
        return lookup[self.codes.long()]


def build(t: Target, seg: Any) -> Any:
    """The resident structure of index target ``t`` on a resident segment ``seg`` (None for
    kind "none")."""
    if t.kind == "sorted":
        return SortedIndex(seg.column(t.field), seg.validity(t.field))
    if t.kind == "dictionary":
        return DictionaryIndex(seg.column(t.field)).to(seg.device)
    if t.kind == "path":
        from ..expr import json_path as jp

        values = jp.extract(seg.column(t.field), t.path, seg.device)
        held = {name: getattr(values, name) for name in (*JSON_CAST_TYPES[t.cast], "present")}
        return held
    return None


def objects_of(built: Any) -> list[Any]:
    if built is None:
        return []
    if isinstance(built, dict):
        return list(built.values())
    return built.objects()


"""Typed columns for one JSON path of one segment, built once and cached.

A JSON field (or the dynamic field ``$meta``) is stored as JSON text. A filter on a path
(``meta["a"][0]``, or a dynamic key ``color``) needs that path's values as columns; they are
extracted in one pass per (segment, field, path) and kept on the resident segment (and
counted by the allocator as part ``$cache``), so every later filter on the same path is
vectorised torch / pyarrow work. A growing segment extends its cache with the new rows only.

Values are split by JSON type: numbers (float64, bools excluded), strings, bools, and lists
(elements as canonical JSON text, so ``1`` and ``1.0`` are the same element). A row whose
path is missing or null is *absent*; comparisons on absent or wrongly-typed values are
unknown (they never match, and ``not`` does not make them match).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import torch

from ..columns import MAX_JSON_DEPTH
from ..errors import ParamError

_MISS = object()


def canonical(value: Any) -> str:
    """JSON text of a value with integral floats written as ints (1.0 -> 1)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, (list, tuple)):  # a filter's list literal is a tuple
        return "[" + ",".join(canonical(v) for v in value) + "]"
    elif isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    return json.dumps(value, ensure_ascii=False)


@dataclass
class JsonValues:
    num: torch.Tensor      # (n,) float64
    is_num: torch.Tensor   # (n,) bool
    str_: pa.Array         # (n,) string, null where not a string
    bool_: torch.Tensor    # (n,) bool
    is_bool: torch.Tensor  # (n,) bool
    lists: pa.Array        # (n,) list<string> of canonical elements, null where not a list
    present: torch.Tensor  # (n,) bool: the path exists and is not null

    @property
    def is_str(self) -> torch.Tensor:
        return _valid(self.str_, self.present.device)

    @property
    def is_list(self) -> torch.Tensor:
        return _valid(self.lists, self.present.device)

    def objects(self) -> list[Any]:
        return [self.num, self.is_num, self.str_, self.bool_, self.is_bool, self.lists,
                self.present]


class Indexed:
    """The typed columns of a path as a JSON-path index holds them (``held``: the columns
    of its cast types, and ``present``); a column it does not hold comes from ``rest()``,
    the full extraction, so a filter answers the same with or without the index."""

    def __init__(self, held: dict, rest: Any) -> None:
        self._held, self._rest = held, rest

    def __getattr__(self, name: str) -> Any:
        if name in ("is_str", "is_list"):
            source = "str_" if name == "is_str" else "lists"
            if source in self._held:
                return _valid(self._held[source], self._held["present"].device)
        if name in self._held:
            return self._held[name]
        return getattr(self._rest(), name)


def _valid(arr: pa.Array, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(arr.is_valid().to_numpy(zero_copy_only=False)).to(device)


def _walk(value: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(key, str):
            value = value.get(key, _MISS) if isinstance(value, dict) else _MISS
        else:
            value = value[key] if isinstance(value, list) and 0 <= key < len(value) else _MISS
        if value is _MISS:
            return _MISS
    return value


def extract(col: pa.Array, path: tuple, device: torch.device) -> JsonValues:
    """Typed columns of ``path`` in the JSON texts of ``col`` (a string array): Arrow's JSON
    reader (C++) when every row's value at the path has one JSON type, else one Python
    pass. Stored values nest at most ``columns.MAX_JSON_DEPTH`` deep (inserts refuse
    deeper ones), so the recursion in ``canonical`` and ``json.loads`` is bounded; a value
    that still exceeds Python's limit is a clear error, never a crash of the server."""
    fast = _extract_arrow(col, path, device)
    if fast is not None:
        return fast
    try:
        return _extract_python(col, path, device)
    except RecursionError:
        raise ParamError("a stored JSON value is nested too deep to filter on: delete or "
                         "rewrite the rows whose JSON nests more than "
                         f"{MAX_JSON_DEPTH} levels") from None


def _extract_arrow(col: pa.Array, path: tuple, device: torch.device) -> JsonValues | None:
    try:
        return _arrow_path(col, path, device)
    except pa.ArrowException:
        return None  # anything Arrow cannot type (mixed types, all-null lists): Python pass


def _arrow_path(col: pa.Array, path: tuple, device: torch.device) -> JsonValues | None:
    n = len(col)
    if n == 0:
        return None
    wrapped = pc.binary_join_element_wise('{"v":', pc.fill_null(col, "null"), "}", "")
    ndjson = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), wrapped),
                            "\n")
    table = pa_json.read_json(pa.BufferReader(ndjson[0].as_buffer()),
                              parse_options=pa_json.ParseOptions(newlines_in_values=True))
    v = table.column("v").combine_chunks()
    for key in path:
        t = v.type
        if isinstance(key, str):
            if not pa.types.is_struct(t) or t.get_field_index(key) < 0:
                return None if not pa.types.is_null(t) and not pa.types.is_struct(t) else \
                    _absent(n, device)
            v = pc.struct_field(v, key)
        else:
            if not pa.types.is_list(t):
                return None if not pa.types.is_null(t) else _absent(n, device)
            long_enough = pc.greater(pc.list_value_length(v).fill_null(0), key)
            v = pc.list_element(pc.if_else(long_enough, v, pa.scalar([None] * (key + 1),
                                                                       type=t)), key)
    t = v.type
    valid = v.is_valid().to_numpy(zero_copy_only=False)
    zeros = np.zeros(n, dtype=bool)
    none_str = pa.nulls(n, pa.string())
    none_list = pa.nulls(n, pa.list_(pa.string()))

    def tt(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    if pa.types.is_integer(t) or pa.types.is_floating(t):
        num = v.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
        return JsonValues(tt(num.copy()), tt(valid), none_str, tt(zeros), tt(zeros), none_list,
                          tt(valid))
    if pa.types.is_boolean(t):
        b = v.fill_null(False).to_numpy(zero_copy_only=False)
        return JsonValues(tt(np.zeros(n)), tt(zeros), none_str, tt(b.copy()), tt(valid),
                          none_list, tt(valid))
    if pa.types.is_string(t):
        return JsonValues(tt(np.zeros(n)), tt(zeros), v, tt(zeros), tt(zeros), none_list,
                          tt(valid))
    if pa.types.is_null(t):
        return _absent(n, device)
    if pa.types.is_list(t) and (pa.types.is_integer(t.value_type)
                                or pa.types.is_boolean(t.value_type)):
        lists = v.cast(pa.list_(pa.string()))  # 1 -> "1", true -> "true": canonical JSON
        if lists.values.null_count:  # a null element is the JSON text "null"
            lists = pa.ListArray.from_arrays(lists.offsets, lists.values.fill_null("null"),
                                             mask=lists.is_null())
        return JsonValues(tt(np.zeros(n)), tt(zeros), none_str, tt(zeros), tt(zeros), lists,
                          tt(valid))
    return None  # objects, lists of strings or floats: the Python pass


def _absent(n: int, device: torch.device) -> JsonValues:
    z = torch.zeros(n, dtype=torch.bool, device=device)
    return JsonValues(torch.zeros(n, dtype=torch.float64, device=device), z,
                      pa.nulls(n, pa.string()), z, z, pa.nulls(n, pa.list_(pa.string())), z)


def _extract_python(col: pa.Array, path: tuple, device: torch.device) -> JsonValues:
    """One Python pass over the JSON texts (values of mixed types)."""
    texts = col.to_pylist()
    n = len(texts)
    num = np.zeros(n, dtype=np.float64)
    is_num = np.zeros(n, dtype=bool)
    bools = np.zeros(n, dtype=bool)
    is_bool = np.zeros(n, dtype=bool)
    present = np.zeros(n, dtype=bool)
    strs: list[Any] = [None] * n
    lists: list[Any] = [None] * n
    loads = json.loads
    for i, text in enumerate(texts):
        if text is None:
            continue
        v = _walk(loads(text), path)
        if v is _MISS or v is None:
            continue
        present[i] = True
        if v is True or v is False:
            bools[i] = v
            is_bool[i] = True
        elif isinstance(v, (int, float)):
            num[i] = v
            is_num[i] = True
        elif isinstance(v, str):
            strs[i] = v
        elif isinstance(v, list):
            lists[i] = [canonical(e) for e in v]

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    return JsonValues(t(num), t(is_num), pa.array(strs, type=pa.string()), t(bools), t(is_bool),
                      pa.array(lists, type=pa.list_(pa.string())), t(present))


def concat(a: JsonValues, b: JsonValues) -> JsonValues:
    return JsonValues(torch.cat([a.num, b.num]), torch.cat([a.is_num, b.is_num]),
                      pa.concat_arrays([a.str_, b.str_]), torch.cat([a.bool_, b.bool_]),
                      torch.cat([a.is_bool, b.is_bool]), pa.concat_arrays([a.lists, b.lists]),
                      torch.cat([a.present, b.present]))

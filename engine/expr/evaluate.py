"""Type-check a filter AST against a schema, then evaluate it to a row mask.

Typing (each failure is a 1100 error with a caret under the offending position): numbers
compare with numbers, strings with strings, bools with bools (``==``/``!=``); a JSON value
(a JSON field, a path in it, or a dynamic key) compares with anything and matches only rows
where it has that type; arithmetic is on numbers; ``like`` is on strings; array functions
take an ARRAY field or a JSON value; a field outside the loaded set is rejected (API.md
rule 4), never read from disk. Templates ``{name}`` are filled from ``filter_params`` first.

Evaluation is vectorised per segment: numeric and bool columns are torch tensors on the
segment's device; VARCHAR and ARRAY columns are Arrow arrays evaluated with pyarrow.compute;
JSON paths come from the segment's typed path cache or JSON-path index (json_path.py). A
comparison, ``in`` or ``like`` of a field with literals uses the segment's scalar index of
that field when it has one (index/scalar.py), with the same answer. Nulls follow SQL's
three-valued logic: a comparison with null (or a missing / wrongly typed JSON value) is
unknown, ``not unknown`` is unknown, and only rows known to be true pass.
"""
from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..errors import ParamError
from ..schema import DYNAMIC_FIELD, CollectionSchema, DataType
from . import ast
from .bounds import int_comparison, int_values
from .json_path import JsonValues, canonical
from .parser import caret, parse

T_NUM, T_STR, T_BOOL, T_JSON, T_ARRAY, T_LIST = "number", "string", "bool", "json", "array", "list"


class ColumnSource(Protocol):
    num_rows: int
    device: torch.device

    def column(self, name: str) -> Any: ...

    def validity(self, name: str) -> torch.Tensor | None: ...

    def json_values(self, field: str, path: tuple) -> JsonValues: ...


def _type_error(text: str, node: ast.Node, what: str) -> ParamError:
    return ParamError(f"{what} in expression{caret(text, node.pos)}")


@dataclass(frozen=True, slots=True)
class Ref:
    """A resolved field reference: which stored column, and how to read it."""

    field: str          # schema field name or $meta
    kind: str           # "scalar" | "json" | "array" | "element"
    path: tuple = ()    # JSON path, or (index,) for an array element
    dtype: DataType | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Filter:
    text: str
    root: ast.Node
    fields: frozenset  # stored field names the filter reads
    refs: dict         # FieldRef node -> Ref

    def __reduce__(self):
        """Pickled (for a Ray worker) with its references tied to the nodes themselves:
        ``refs`` is keyed by node identity, which unpickling changes."""
        return _unpickle_filter, (self.text, self.root, self.fields,
                                  [(n, self.refs[id(n)]) for n in _field_refs(self.root)
                                   if id(n) in self.refs])

    def mask(self, seg: ColumnSource) -> torch.Tensor:
        """(n,) bool on ``seg.device``: rows for which the expression is known true."""
        try:
            val, known = _Eval(seg, self.refs).boolean(self.root)
        except (ZeroDivisionError, OverflowError) as e:
            raise ParamError(f"cannot evaluate expression {self.text}: {e}") from None
        except RuntimeError as e:
            if "ZeroDivision" not in str(e):
                raise
            raise ParamError(f"cannot evaluate expression {self.text}: integer division or "
                             "modulo by zero") from None
        return val if known is None else val & known


def _field_refs(node: Any) -> list:
    """Every FieldRef node under ``node``."""
    if isinstance(node, ast.FieldRef):
        return [node]
    if isinstance(node, (tuple, list)):
        return [r for n in node for r in _field_refs(n)]
    if isinstance(node, ast.Node):
        return [r for f in dataclasses.fields(node) for r in _field_refs(getattr(node, f.name))]
    return []


def _unpickle_filter(text: str, root: ast.Node, fields: frozenset, pairs: list) -> Filter:
    return Filter(text, root, fields, {id(n): ref for n, ref in pairs})


def compile_filter(text: str, schema: CollectionSchema, loaded: set[str] | None = None,
                   params: dict | None = None) -> Filter | None:
    """Parse, fill templates and type-check ``text``; ``None`` for an empty filter.
    ``loaded`` is the set of resident field names (``None``: all fields)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise ParamError(f"filter must be a string, got {type(text).__name__}")
    root = _fill(parse(text), params or {}, text)
    checker = _Checker(text, schema, loaded)
    t = checker.type_of(root)
    if t not in (T_BOOL, T_JSON):
        raise _type_error(text, root, "the filter must be a boolean expression, got a " + t)
    return Filter(text, root, frozenset(checker.fields), checker.refs)


def _fill(node: Any, params: dict, text: str) -> Any:
    """Replace templates with literals from ``params``."""
    if isinstance(node, ast.Template):
        if node.name not in params:
            raise ParamError(f"template {{{node.name}}} has no value in filter_params"
                             f"{caret(text, node.pos)}")
        value = params[node.name]
        if isinstance(value, (list, tuple)):
            value = tuple(value)
        elif isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (int, float, str, bool, tuple)):
            raise ParamError(f"filter_params[{node.name!r}] must be a number, string, bool or "
                             f"list, got {type(value).__name__}")
        return ast.Literal(node.pos, value)
    if isinstance(node, ast.ListExpr):
        items = [_fill(i, params, text) for i in node.items]
        if any(isinstance(i.value, tuple) for i in items):
            raise ParamError(f"a list template cannot sit inside a list{caret(text, node.pos)}")
        return ast.Literal(node.pos, tuple(i.value for i in items))
    if isinstance(node, tuple):
        return tuple(_fill(i, params, text) for i in node)
    if isinstance(node, ast.Node):
        changes = {f.name: _fill(getattr(node, f.name), params, text)
                   for f in dataclasses.fields(node) if f.name != "pos"}
        return dataclasses.replace(node, **changes)
    return node


def _literal_type(v: Any) -> str:
    if isinstance(v, bool):
        return T_BOOL
    if isinstance(v, (int, float)):
        return T_NUM
    if isinstance(v, str):
        return T_STR
    return T_LIST


_ELEMENT_TYPES = {DataType.BOOL: T_BOOL, DataType.VARCHAR: T_STR}
_CONTAINS = {"array_contains", "json_contains"}
_CONTAINS_SET = {"array_contains_all", "array_contains_any", "json_contains_all",
                 "json_contains_any"}


def _scalar_type(dtype: DataType) -> str:
    return _ELEMENT_TYPES.get(dtype, T_NUM)


class _Checker:
    def __init__(self, text: str, schema: CollectionSchema, loaded: set[str] | None) -> None:
        self.text, self.schema, self.loaded = text, schema, loaded
        self.fields: set[str] = set()
        self.refs: dict[int, Ref] = {}

    def err(self, node: ast.Node, what: str) -> ParamError:
        return _type_error(self.text, node, what)

    def type_of(self, n: ast.Node) -> str:
        if isinstance(n, ast.Literal):
            return _literal_type(n.value)
        if isinstance(n, ast.FieldRef):
            return self._field_type(n)
        if isinstance(n, ast.Compare):
            a, b = self.type_of(n.left), self.type_of(n.right)
            if T_ARRAY in (a, b) or T_LIST in (a, b):
                raise self.err(n, f"operator {n.op} does not apply to arrays or lists")
            if a != b and T_JSON not in (a, b):
                raise self.err(n.right, f"cannot compare {a} with {b} (operator {n.op})")
            if T_BOOL in (a, b) and n.op not in ("==", "!="):
                raise self.err(n, f"operator {n.op} does not apply to bools")
            return T_BOOL
        if isinstance(n, ast.InList):
            a = self.type_of(n.operand)
            if not isinstance(n.values, ast.Literal) or not isinstance(n.values.value, tuple):
                raise self.err(n.values, "in needs a list of values")
            if a in (T_ARRAY, T_LIST):
                raise self.err(n.operand, "in applies to a scalar or JSON value, not an array")
            for v in n.values.value:
                if a != T_JSON and _literal_type(v) != a:
                    raise self.err(n.operand, f"list value {v!r} does not match the {a} "
                                   "on the left of in")
            return T_BOOL
        if isinstance(n, ast.Like):
            if self.type_of(n.operand) not in (T_STR, T_JSON):
                raise self.err(n.operand, "like applies to strings only")
            if (len(n.pattern) - len(n.pattern.rstrip("\\"))) % 2:
                raise self.err(n, f"like pattern {n.pattern!r} ends in an escape character "
                               "with nothing to escape: write \\\\ for a backslash")
            return T_BOOL
        if isinstance(n, ast.IsNull):
            if not isinstance(n.operand, ast.FieldRef):
                raise self.err(n.operand, "is null applies to a field")
            self.type_of(n.operand)
            return T_BOOL
        if isinstance(n, (ast.Arith, ast.Neg)):
            for sub in ((n.left, n.right) if isinstance(n, ast.Arith) else (n.operand,)):
                if self.type_of(sub) not in (T_NUM, T_JSON):
                    raise self.err(sub, "arithmetic applies to numbers only")
            return T_NUM
        if isinstance(n, (ast.And, ast.Or, ast.Not)):
            subs = (n.left, n.right) if not isinstance(n, ast.Not) else (n.operand,)
            for sub in subs:
                if self.type_of(sub) not in (T_BOOL, T_JSON):
                    raise self.err(sub, "and/or/not need boolean operands")
            return T_BOOL
        if isinstance(n, ast.Call):
            return self._call_type(n)
        if isinstance(n, ast.Template):
            raise self.err(n, f"template {{{n.name}}} was not filled")
        raise self.err(n, f"unsupported expression {type(n).__name__}")

    def _call_type(self, n: ast.Call) -> str:
        arity = 1 if n.name == "array_length" else 2
        if n.name not in _CONTAINS | _CONTAINS_SET | {"array_length"}:
            raise self.err(n, f"unknown function {n.name}(); Hotset knows array_contains, "
                           "array_contains_all, array_contains_any, array_length, json_contains, "
                           "json_contains_all, json_contains_any")
        if len(n.args) != arity:
            raise self.err(n, f"{n.name}() takes {arity} argument(s), got {len(n.args)}")
        target = self.type_of(n.args[0])
        if target not in (T_ARRAY, T_JSON):
            raise self.err(n.args[0], f"{n.name}() needs an ARRAY field or a JSON value")
        if n.name == "array_length":
            return T_NUM
        arg = n.args[1]
        if not isinstance(arg, ast.Literal):
            raise self.err(arg, f"the second argument of {n.name}() must be a literal")
        values = arg.value if n.name in _CONTAINS_SET else (arg.value,)
        if n.name in _CONTAINS_SET and not isinstance(arg.value, tuple):
            raise self.err(arg, f"{n.name}() needs a list of values")
        ref = self.refs.get(id(n.args[0]))
        if ref is not None and ref.kind == "array":
            want = _scalar_type(ref.dtype)
            for v in values:
                if _literal_type(v) != want:
                    raise self.err(arg, f"{v!r} does not match the array's {want} elements")
        return T_BOOL

    def _field_type(self, n: ast.FieldRef) -> str:
        f = self.schema.field(n.name)
        if f is None:
            if not self.schema.enable_dynamic_field:
                raise self.err(n, f"field {n.name} not exist")
            if self.loaded is not None and DYNAMIC_FIELD not in self.loaded:
                raise ParamError(f"field {n.name} cannot be used since the dynamic field is "
                                 f"not loaded{caret(self.text, n.pos)}")
            field = DYNAMIC_FIELD
            path = (() if n.name == DYNAMIC_FIELD else (n.name,)) + n.path
            self.refs[id(n)] = Ref(field, "json", path)
            self.fields.add(field)
            return T_JSON
        if self.loaded is not None and n.name not in self.loaded:
            raise ParamError(f"field {n.name} is not loaded{caret(self.text, n.pos)}\n"
                             "release the collection and load it with this field in load_fields")
        if f.is_vector:
            raise self.err(n, f"vector field {n.name} cannot be used in a filter")
        self.fields.add(n.name)
        if f.dtype == DataType.JSON:
            self.refs[id(n)] = Ref(n.name, "json", n.path)
            return T_JSON
        if f.dtype == DataType.ARRAY:
            if not n.path:
                self.refs[id(n)] = Ref(n.name, "array", (), f.element_type)
                return T_ARRAY
            if len(n.path) != 1 or not isinstance(n.path[0], int):
                raise self.err(n, f"ARRAY field {n.name} takes one integer index, like "
                               f"{n.name}[0]")
            self.refs[id(n)] = Ref(n.name, "element", n.path, f.element_type)
            return _scalar_type(f.element_type)
        if n.path:
            raise self.err(n, f"field {n.name} is {f.dtype.name}, not JSON or ARRAY: it has no "
                           "[...] path")
        self.refs[id(n)] = Ref(n.name, "scalar", (), f.dtype)
        return _scalar_type(f.dtype)


_TORCH_CMP = {"==": torch.eq, "!=": torch.ne, "<": torch.lt, "<=": torch.le,
              ">": torch.gt, ">=": torch.ge}
_PC_CMP = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
           ">": pc.greater, ">=": pc.greater_equal}
_PY_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}

BoolVal = tuple  # (value tensor, known tensor or None)


class _Eval:
    """Values: ('s', scalar) | ('t', tensor, valid|None) | ('a', pa.Array) | ('j', JsonValues)
    | ('l', pa.ListArray)."""

    def __init__(self, seg: ColumnSource, refs: dict) -> None:
        self.seg = seg
        self.refs = refs
        self.n = seg.num_rows
        self.dev = seg.device

    def _full(self, value: bool) -> torch.Tensor:
        return torch.full((self.n,), value, dtype=torch.bool, device=self.dev)

    def _t(self, a: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:
            a = a.copy()
        return torch.from_numpy(a).to(self.dev)

    def _from_arrow(self, arr: pa.Array) -> BoolVal:
        known = None
        if arr.null_count:
            known = self._t(arr.is_valid().to_numpy(zero_copy_only=False))
        vals = arr.fill_null(False).to_numpy(zero_copy_only=False)
        return self._t(vals.astype(bool, copy=False)), known

    # -- booleans ---------------------------------------------------------------------
    def boolean(self, n: ast.Node) -> BoolVal:
        if isinstance(n, ast.And):
            va, ka = self.boolean(n.left)
            vb, kb = self.boolean(n.right)
            return va & vb, _and_known(va, ka, vb, kb)
        if isinstance(n, ast.Or):
            va, ka = self.boolean(n.left)
            vb, kb = self.boolean(n.right)
            return va | vb, _or_known(va, ka, vb, kb)
        if isinstance(n, ast.Not):
            v, k = self.boolean(n.operand)
            return ~v, k
        if isinstance(n, ast.Compare):
            hit = self._indexed_compare(n)
            if hit is not None:
                return hit
            return self._compare(n.op, self.value(n.left), self.value(n.right))
        if isinstance(n, ast.InList):
            return self._in(n)
        if isinstance(n, ast.Like):
            index = self._index_of(n.operand)
            if index is not None and hasattr(index, "dictionary"):
                return index.gather(pc.match_like(index.dictionary, n.pattern)), index.known
            v = self.value(n.operand)
            arr = v[1].str_ if v[0] == "j" else v[1]
            return self._from_arrow(pc.match_like(arr, n.pattern))
        if isinstance(n, ast.IsNull):
            present = self._present(n.operand)
            return (present if n.negate else ~present), None
        if isinstance(n, ast.Call):
            return self._call(n)
        v = self.value(n)
        if v[0] == "s":
            return self._full(bool(v[1])), None
        if v[0] == "t":
            return v[1].to(torch.bool), v[2]
        if v[0] == "j":
            return v[1].bool_, v[1].is_bool
        return self._from_arrow(v[1])

    # -- scalar indexes (index/scalar.py): a sorted or a dictionary index of the column --
    def _index_of(self, node: ast.Node) -> Any:
        """The segment's scalar index on the field ``node`` reads, or None."""
        if not isinstance(node, ast.FieldRef) or self.refs[id(node)].kind != "scalar":
            return None
        lookup = getattr(self.seg, "scalar_index", None)
        return None if lookup is None else lookup(self.refs[id(node)].field)

    def _indexed_compare(self, n: ast.Compare) -> BoolVal | None:
        """``field <op> literal`` answered by the field's index, or None (no index, or a
        scan of the column is cheaper)."""
        column, other, op = n.left, n.right, n.op
        if isinstance(column, ast.Literal):
            column, other, op = other, column, _FLIP.get(op, op)
        if not isinstance(other, ast.Literal) or isinstance(other.value, tuple):
            return None
        index = self._index_of(column)
        lit = other.value
        if index is None or isinstance(lit, bool):
            return None
        if hasattr(index, "dictionary"):
            if not isinstance(lit, str):
                return None
            return index.gather(_PC_CMP[op](index.dictionary, pa.scalar(lit))), index.known
        hit = index.compare(op, lit) if isinstance(lit, (int, float)) else None
        return None if hit is None else (hit, self.seg.validity(self.refs[id(column)].field))

    def _indexed_in(self, n: ast.InList) -> BoolVal | None:
        index = self._index_of(n.operand)
        if index is None:
            return None
        values = n.values.value
        if hasattr(index, "dictionary"):
            strs = pa.array([v for v in values if isinstance(v, str)], type=pa.string())
            hit, known = index.gather(pc.is_in(index.dictionary, value_set=strs)), index.known
        else:
            hit, known = index.isin(values), self.seg.validity(self.refs[id(n.operand)].field)
        return None if hit is None else ((~hit if n.negate else hit), known)

    def _present(self, node: ast.FieldRef) -> torch.Tensor:
        v = self.value(node)
        if v[0] == "j":
            return v[1].present
        if v[0] == "t":
            return self._full(True) if v[2] is None else v[2]
        return self._t(v[1].is_valid().to_numpy(zero_copy_only=False))

    def _compare(self, op: str, a: tuple, b: tuple) -> BoolVal:
        if a[0] in ("s",) and b[0] != "s":  # keep the column on the left
            a, b, op = b, a, _FLIP.get(op, op)
        if a[0] == "s":
            return self._full(bool(_PY_CMP[op](a[1], b[1]))), None
        if a[0] == "j" or b[0] == "j":
            return self._compare_json(op, a, b)
        if a[0] == "a" or b[0] == "a":
            left = a[1] if a[0] == "a" else pa.scalar(a[1])
            right = b[1] if b[0] == "a" else pa.scalar(b[1])
            return self._from_arrow(_PC_CMP[op](left, right))
        if b[0] == "s" and _is_int_tensor(a[1]):
            exact = int_comparison(op, b[1], a[1].dtype)
            if isinstance(exact, bool):
                return self._full(exact), a[2]
            op, lit = exact
            return _TORCH_CMP[op](a[1], lit), a[2]
        return _TORCH_CMP[op](a[1], b[1]), _known(a, b)

    def _compare_json(self, op: str, a: tuple, b: tuple) -> BoolVal:
        if a[0] != "j":
            a, b, op = b, a, _FLIP.get(op, op)
        j: JsonValues = a[1]
        if b[0] == "s":
            lit = b[1]
            if isinstance(lit, bool):
                return _TORCH_CMP[op](j.bool_, lit), j.is_bool
            if isinstance(lit, (int, float)):
                return _TORCH_CMP[op](j.num, float(lit)), j.is_num
            return self._from_arrow(_PC_CMP[op](j.str_, pa.scalar(lit)))
        if b[0] == "t":
            other = b[1]
            if other.dtype == torch.bool:
                return _TORCH_CMP[op](j.bool_, other), _and_all(j.is_bool, b[2])
            return _TORCH_CMP[op](j.num, other.double()), _and_all(j.is_num, b[2])
        if b[0] == "a":
            return self._from_arrow(_PC_CMP[op](j.str_, b[1]))
        k: JsonValues = b[1]  # JSON vs JSON: numbers with numbers, strings with strings
        both_num = j.is_num & k.is_num
        sv, sk = self._from_arrow(_PC_CMP[op](j.str_, k.str_))
        sk = torch.ones_like(sv) if sk is None else sk
        both_bool = j.is_bool & k.is_bool
        val = (_TORCH_CMP[op](j.num, k.num) & both_num) | (sv & sk) | (
            _TORCH_CMP[op](j.bool_, k.bool_) & both_bool)
        return val, both_num | sk | both_bool

    def _in(self, n: ast.InList) -> BoolVal:
        indexed = self._indexed_in(n)
        if indexed is not None:
            return indexed
        values = n.values.value
        v = self.value(n.operand)
        if v[0] == "s":
            hit, known = self._full(v[1] in values), None
        elif v[0] == "a":
            hit, known = self._from_arrow(pc.is_in(v[1], value_set=pa.array(list(values))))
            if v[1].null_count:
                known = self._t(v[1].is_valid().to_numpy(zero_copy_only=False))
        elif v[0] == "j":
            j: JsonValues = v[1]
            nums = [float(x) for x in values if _literal_type(x) == T_NUM]
            strs = [x for x in values if isinstance(x, str)]
            bools = [x for x in values if isinstance(x, bool)]
            hit = self._full(False)
            if nums:
                hit |= torch.isin(j.num, torch.tensor(nums, dtype=torch.float64,
                                                      device=self.dev)) & j.is_num
            if strs:
                hit |= self._from_arrow(pc.is_in(j.str_, value_set=pa.array(strs)))[0]
            for b in bools:
                hit |= (j.bool_ == b) & j.is_bool
            known = j.is_num | j.is_bool | j.is_str
        else:
            col = v[1]
            if _is_int_tensor(col):
                vals = torch.tensor(int_values(values, col.dtype), dtype=col.dtype,
                                    device=self.dev)
            else:
                col = col.double()
                vals = torch.tensor(list(values), dtype=torch.float64, device=self.dev)
            hit = torch.isin(col, vals)
            known = v[2]
        return (~hit if n.negate else hit), known

    def _call(self, n: ast.Call) -> BoolVal:
        target = self.value(n.args[0])
        values = n.args[1].value
        if n.name in _CONTAINS:
            values = (values,)
        if target[0] == "j":
            lists = target[1].lists
            items = [canonical(x) for x in values]
            known = target[1].is_list
        else:
            lists, items, known = target[1], list(values), None
            if target[1].null_count:
                known = self._t(target[1].is_valid().to_numpy(zero_copy_only=False))
        masks = [self._list_contains(lists, x) for x in items]
        if not masks:
            out = self._full(n.name.endswith("_all"))
        elif n.name.endswith("_any"):
            out = masks[0]
            for m in masks[1:]:
                out = out | m
        else:
            out = masks[0]
            for m in masks[1:]:
                out = out & m
        return out, known

    def _list_contains(self, lists: pa.Array, value: Any) -> torch.Tensor:
        flat = pc.list_flatten(lists)
        parents = pc.list_parent_indices(lists)
        eq = pc.equal(flat, pa.scalar(value, type=flat.type)).fill_null(False)
        rows = parents.filter(eq).to_numpy(zero_copy_only=False)
        out = np.zeros(self.n, dtype=bool)
        out[rows] = True
        return self._t(out)

    # -- values -----------------------------------------------------------------------
    def value(self, n: ast.Node) -> tuple:
        if isinstance(n, ast.Literal):
            return ("s", n.value)
        if isinstance(n, ast.FieldRef):
            return self._field(self.refs[id(n)])
        if isinstance(n, ast.Neg):
            v = self._numeric(self.value(n.operand))
            return ("s", -v[1]) if v[0] == "s" else ("t", -v[1], v[2])
        if isinstance(n, ast.Arith):
            return self._arith(n.op, self._numeric(self.value(n.left)),
                               self._numeric(self.value(n.right)))
        if isinstance(n, ast.Call) and n.name == "array_length":
            target = self.value(n.args[0])
            lists = target[1].lists if target[0] == "j" else target[1]
            lengths = pc.list_value_length(lists)
            known = self._t(lengths.is_valid().to_numpy(zero_copy_only=False))
            vals = lengths.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            return ("t", self._t(vals), known)
        val, known = self.boolean(n)  # a boolean sub-expression used as a value
        return ("t", val, known)

    def _numeric(self, v: tuple) -> tuple:
        if v[0] == "j":
            return ("t", v[1].num, v[1].is_num)
        return v

    def _field(self, ref: Ref) -> tuple:
        if ref.kind == "json":
            return ("j", self.seg.json_values(ref.field, ref.path))
        col = self.seg.column(ref.field)
        if ref.kind == "scalar":
            if isinstance(col, torch.Tensor):
                return ("t", col, self.seg.validity(ref.field))
            return ("a", col)
        if ref.kind == "array":
            return ("l", col)
        idx = ref.path[0]  # an element of an ARRAY field; rows too short are null
        lengths = pc.list_value_length(col).fill_null(0)
        long_enough = pc.greater(lengths, idx)
        safe = pc.if_else(long_enough, col, pa.scalar([None] * (idx + 1), type=col.type))
        elem = pc.list_element(safe, idx)
        if ref.dtype == DataType.VARCHAR:
            return ("a", elem)
        known = self._t(elem.is_valid().to_numpy(zero_copy_only=False))
        fill = False if ref.dtype == DataType.BOOL else 0
        return ("t", self._t(elem.fill_null(fill).to_numpy(zero_copy_only=False)), known)

    def _arith(self, op: str, a: tuple, b: tuple) -> tuple:
        x, y = a[1], b[1]
        if op in ("/", "%") and not isinstance(y, torch.Tensor) and y == 0:
            raise ParamError(f"division by zero in a filter ({op} 0): change the expression")
        if a[0] == "s" and b[0] == "s":
            return ("s", _py_arith(op, x, y))
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, device=self.dev)
        # As Milvus: integers are computed in int64 and floats in float64, so INT8/INT16/
        # INT32 columns cannot wrap around (int8_val + 1 for 127 is 128, not -128).
        x = _widened(x)
        if isinstance(y, torch.Tensor):
            y = _widened(y)
        if op == "/":
            out = torch.true_divide(x, y)
        elif op == "%":
            out = torch.remainder(x, y)
        elif op == "**":
            out = torch.pow(x, y)
        else:
            out = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](x, y)
        if not out.dtype.is_floating_point and out.dtype != torch.int64:
            out = out.long()
        return ("t", out, _known(a, b))


def _is_int_tensor(t: torch.Tensor) -> bool:
    return not t.dtype.is_floating_point and t.dtype != torch.bool


def _widened(t: torch.Tensor) -> torch.Tensor:
    if t.dtype.is_floating_point:
        return t if t.dtype == torch.float64 else t.double()
    return t if t.dtype == torch.int64 else t.long()


def _py_arith(op: str, x: Any, y: Any) -> Any:
    if op == "/":
        return x / y
    if op == "%":
        return x % y
    if op == "**":
        return float(x) ** float(y)  # floats: a huge int power cannot stall the engine
    return {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](x, y)


def _known(a: tuple, b: tuple) -> torch.Tensor | None:
    return _and_all(a[2] if a[0] == "t" else None, b[2] if b[0] == "t" else None)


def _and_all(ka: torch.Tensor | None, kb: torch.Tensor | None) -> torch.Tensor | None:
    if ka is None:
        return kb
    if kb is None:
        return ka
    return ka & kb


def _and_known(va, ka, vb, kb):
    if ka is None and kb is None:
        return None
    ka = torch.ones_like(va) if ka is None else ka
    kb = torch.ones_like(vb) if kb is None else kb
    return (ka & kb) | (ka & ~va) | (kb & ~vb)


def _or_known(va, ka, vb, kb):
    if ka is None and kb is None:
        return None
    ka = torch.ones_like(va) if ka is None else ka
    kb = torch.ones_like(vb) if kb is None else kb
    return (ka & kb) | (ka & va) | (kb & vb)

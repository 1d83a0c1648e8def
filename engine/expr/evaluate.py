"""Type-check a filter AST against a schema, then evaluate it to a row mask.

Typing (each failure is a 1100 error with a caret under the offending position):
numbers compare with numbers, strings with strings, bools with bools (``==``/``!=``);
arithmetic is on numbers; ``like`` is on strings; a field outside the loaded set is
rejected (API.md rule 4), never read from disk.

Evaluation is vectorised per segment: numeric and bool columns are torch tensors on the
segment's device; VARCHAR columns are Arrow arrays evaluated with pyarrow.compute.
Nulls follow SQL's three-valued logic: a comparison with null is unknown, ``not unknown``
is unknown, and only rows known to be true pass.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..errors import ParamError
from ..schema import DYNAMIC_FIELD, INT_TYPES, CollectionSchema, DataType
from . import ast
from .parser import caret, parse

_T_NUM, _T_STR, _T_BOOL = "number", "string", "bool"


class ColumnSource(Protocol):
    num_rows: int
    device: torch.device

    def column(self, name: str) -> Any: ...

    def validity(self, name: str) -> torch.Tensor | None: ...


def _type_error(text: str, node: ast.Node, what: str) -> ParamError:
    return ParamError(f"{what} in expression{caret(text, node.pos)}")


@dataclass(frozen=True, slots=True)
class Filter:
    text: str
    root: ast.Node
    fields: frozenset  # field names the filter reads

    def mask(self, seg: ColumnSource) -> torch.Tensor:
        """(n,) bool on ``seg.device``: rows for which the expression is known true."""
        val, known = _Eval(seg).boolean(self.root)
        return val if known is None else val & known


def compile_filter(text: str, schema: CollectionSchema, loaded: set[str] | None = None) -> Filter | None:
    """Parse and type-check ``text``; ``None`` for an empty filter. ``loaded`` is the set of
    resident field names (``None``: all fields)."""
    if text is None or not str(text).strip():
        return None
    if not isinstance(text, str):
        raise ParamError(f"filter must be a string, got {type(text).__name__}")
    root = parse(text)
    checker = _Checker(text, schema, loaded)
    t = checker.type_of(root)
    if t != _T_BOOL:
        raise _type_error(text, root, "the filter must be a boolean expression, got a " + t)
    return Filter(text, root, frozenset(checker.fields))


class _Checker:
    def __init__(self, text: str, schema: CollectionSchema, loaded: set[str] | None) -> None:
        self.text, self.schema, self.loaded = text, schema, loaded
        self.fields: set[str] = set()

    def type_of(self, n: ast.Node) -> str:
        if isinstance(n, ast.Literal):
            return _literal_type(n.value)
        if isinstance(n, ast.FieldRef):
            return self._field_type(n)
        if isinstance(n, ast.Compare):
            a, b = self.type_of(n.left), self.type_of(n.right)
            if a != b:
                raise _type_error(self.text, n.right,
                                  f"cannot compare {a} with {b} (operator {n.op})")
            if a == _T_BOOL and n.op not in ("==", "!="):
                raise _type_error(self.text, n, f"operator {n.op} does not apply to bools")
            return _T_BOOL
        if isinstance(n, ast.InList):
            a = self.type_of(n.operand)
            for v in n.values:
                if _literal_type(v) != a:
                    raise _type_error(self.text, n.operand,
                                      f"list value {v!r} does not match the {a} on the left of in")
            return _T_BOOL
        if isinstance(n, ast.Like):
            if self.type_of(n.operand) != _T_STR:
                raise _type_error(self.text, n.operand, "like applies to strings only")
            return _T_BOOL
        if isinstance(n, ast.IsNull):
            if not isinstance(n.operand, ast.FieldRef):
                raise _type_error(self.text, n.operand, "is null applies to a field")
            self.type_of(n.operand)
            return _T_BOOL
        if isinstance(n, (ast.Arith, ast.Neg)):
            for sub in ((n.left, n.right) if isinstance(n, ast.Arith) else (n.operand,)):
                if self.type_of(sub) != _T_NUM:
                    raise _type_error(self.text, sub, "arithmetic applies to numbers only")
            return _T_NUM
        if isinstance(n, (ast.And, ast.Or)):
            for sub in (n.left, n.right):
                if self.type_of(sub) != _T_BOOL:
                    raise _type_error(self.text, sub, "and/or need boolean operands")
            return _T_BOOL
        if isinstance(n, ast.Not):
            if self.type_of(n.operand) != _T_BOOL:
                raise _type_error(self.text, n.operand, "not needs a boolean operand")
            return _T_BOOL
        raise AssertionError(n)

    def _field_type(self, n: ast.FieldRef) -> str:
        f = self.schema.field(n.name)
        if f is None:
            if self.schema.enable_dynamic_field:
                if self.loaded is not None and DYNAMIC_FIELD not in self.loaded:
                    raise ParamError(f"field {n.name} cannot be used since the dynamic field "
                                     f"is not loaded{caret(self.text, n.pos)}")
                raise _type_error(self.text, n, f"filtering on the dynamic key {n.name!r} is not "
                                  "supported yet (declare it as a schema field)")
            raise _type_error(self.text, n, f"field {n.name} not exist")
        if self.loaded is not None and n.name not in self.loaded:
            raise ParamError(f"field {n.name} is not loaded{caret(self.text, n.pos)}\n"
                             "release the collection and load it with this field in load_fields")
        if f.is_vector:
            raise _type_error(self.text, n, f"vector field {n.name} cannot be used in a filter")
        if n.path or f.dtype in (DataType.JSON, DataType.ARRAY):
            raise _type_error(self.text, n, f"filtering on {f.dtype.name} field {n.name} is not "
                              "supported yet")
        self.fields.add(n.name)
        if f.dtype == DataType.BOOL:
            return _T_BOOL
        if f.dtype == DataType.VARCHAR:
            return _T_STR
        return _T_NUM


def _literal_type(v: Any) -> str:
    if isinstance(v, bool):
        return _T_BOOL
    if isinstance(v, (int, float)):
        return _T_NUM
    if isinstance(v, str):
        return _T_STR
    return "list"


_TORCH_CMP = {"==": torch.eq, "!=": torch.ne, "<": torch.lt, "<=": torch.le,
              ">": torch.gt, ">=": torch.ge}
_PC_CMP = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
           ">": pc.greater, ">=": pc.greater_equal}
_PY_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
           ">": operator.gt, ">=": operator.ge}


class _Eval:
    """Values are ('s', python scalar) | ('t', tensor, valid|None) | ('a', pa.Array)."""

    def __init__(self, seg: ColumnSource) -> None:
        self.seg = seg
        self.n = seg.num_rows
        self.dev = seg.device

    def _full(self, value: bool) -> torch.Tensor:
        return torch.full((self.n,), value, dtype=torch.bool, device=self.dev)

    def _from_arrow(self, arr: pa.Array) -> tuple[torch.Tensor, torch.Tensor | None]:
        known = None
        if arr.null_count:
            known = torch.from_numpy(arr.is_valid().to_numpy(zero_copy_only=False)).to(self.dev)
        vals = arr.fill_null(False).to_numpy(zero_copy_only=False)
        return torch.from_numpy(np.ascontiguousarray(vals, dtype=bool)).to(self.dev), known

    # -- boolean results: (value, known or None) --------------------------------------
    def boolean(self, n: ast.Node) -> tuple[torch.Tensor, torch.Tensor | None]:
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
            return self._compare(n.op, self.value(n.left), self.value(n.right))
        if isinstance(n, ast.InList):
            return self._in(n)
        if isinstance(n, ast.Like):
            (_, arr) = self.value(n.operand)
            return self._from_arrow(pc.match_like(arr, n.pattern))
        if isinstance(n, ast.IsNull):
            valid = self._valid_of(n.operand.name)
            is_null = ~valid
            return (~is_null if n.negate else is_null), None
        v = self.value(n)
        if v[0] == "s":
            return self._full(bool(v[1])), None
        if v[0] == "t":
            return v[1].to(torch.bool), v[2]
        return self._from_arrow(v[1])

    def _valid_of(self, name: str) -> torch.Tensor:
        col = self.seg.column(name)
        if isinstance(col, torch.Tensor):
            valid = self.seg.validity(name)
            return self._full(True) if valid is None else valid
        return torch.from_numpy(col.is_valid().to_numpy(zero_copy_only=False)).to(self.dev)

    def _compare(self, op: str, a: tuple, b: tuple) -> tuple[torch.Tensor, torch.Tensor | None]:
        if a[0] == "s" and b[0] == "s":
            return self._full(bool(_PY_CMP[op](a[1], b[1]))), None
        if a[0] == "a" or b[0] == "a":
            left = a[1] if a[0] == "a" else pa.scalar(a[1])
            right = b[1] if b[0] == "a" else pa.scalar(b[1])
            return self._from_arrow(_PC_CMP[op](left, right))
        left = a[1] if a[0] == "t" else a[1]
        right = b[1] if b[0] == "t" else b[1]
        if a[0] == "s":  # scalar on the left: flip the operator
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            val = _TORCH_CMP[flipped](right, left)
        else:
            val = _TORCH_CMP[op](left, right)
        return val, _known(a, b)

    def _in(self, n: ast.InList) -> tuple[torch.Tensor, torch.Tensor | None]:
        v = self.value(n.operand)
        if v[0] == "s":
            hit = self._full(v[1] in n.values)
            known = None
        elif v[0] == "a":
            hit, known = self._from_arrow(pc.is_in(v[1], value_set=pa.array(list(n.values))))
            if known is None and v[1].null_count:
                known = torch.from_numpy(v[1].is_valid().to_numpy(zero_copy_only=False)).to(self.dev)
            if v[1].null_count:
                known = torch.from_numpy(v[1].is_valid().to_numpy(zero_copy_only=False)).to(self.dev)
        else:
            col = v[1]
            values = torch.tensor(list(n.values), device=self.dev)
            if not col.dtype.is_floating_point and values.dtype.is_floating_point:
                col = col.double()
            hit = torch.isin(col, values.to(col.dtype) if col.dtype.is_floating_point else values)
            known = v[2]
        return (~hit if n.negate else hit), known

    # -- values -----------------------------------------------------------------------
    def value(self, n: ast.Node) -> tuple:
        if isinstance(n, ast.Literal):
            return ("s", n.value)
        if isinstance(n, ast.FieldRef):
            col = self.seg.column(n.name)
            if isinstance(col, torch.Tensor):
                return ("t", col, self.seg.validity(n.name))
            return ("a", col)
        if isinstance(n, ast.Neg):
            v = self.value(n.operand)
            return ("s", -v[1]) if v[0] == "s" else ("t", -v[1], v[2])
        if isinstance(n, ast.Arith):
            return self._arith(n.op, self.value(n.left), self.value(n.right))
        # a boolean sub-expression used as a value (e.g. (a > 1) == true)
        val, known = self.boolean(n)
        return ("t", val, known)

    def _arith(self, op: str, a: tuple, b: tuple) -> tuple:
        x, y = a[1], b[1]
        if a[0] == "s" and b[0] == "s":
            return ("s", _py_arith(op, x, y))
        if op == "/":
            out = torch.true_divide(x, y) if isinstance(x, torch.Tensor) else torch.true_divide(
                torch.as_tensor(x, device=self.dev), y)
        elif op == "%":
            out = torch.remainder(x, y) if isinstance(x, torch.Tensor) else torch.remainder(
                torch.as_tensor(x, device=self.dev), y)
        elif op == "**":
            out = torch.pow(x, y) if isinstance(x, torch.Tensor) else torch.pow(
                torch.as_tensor(x, device=self.dev), y)
        else:
            out = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](x, y)
        if out.dtype.is_floating_point is False and out.dtype not in (torch.int64,):
            out = out.long()
        return ("t", out, _known(a, b))


def _py_arith(op: str, x: Any, y: Any) -> Any:
    if op == "/":
        return x / y
    if op == "%":
        return x % y
    if op == "**":
        return x ** y
    return {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](x, y)


def _known(a: tuple, b: tuple) -> torch.Tensor | None:
    ka = a[2] if a[0] == "t" else None
    kb = b[2] if b[0] == "t" else None
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


__all__ = ["Filter", "compile_filter", "INT_TYPES"]

"""Comparisons of an integer column with a number literal, made exact.

torch compares an integer tensor with a Python number in the tensor's dtype or in float32:
``int8_col > 300`` wraps 300 to 44, and ``int64_col > 16777216.5`` rounds the column to
float32. Milvus compares the values themselves. :func:`int_comparison` rewrites such a
comparison as one against an integer the column's dtype holds, or as a constant, so the
scan and the sorted index (index/scalar.py) both answer exactly.
"""
from __future__ import annotations

import math

import torch

_ALWAYS = {"!=": True, "==": False}


def int_comparison(op: str, x: int | float, dtype: torch.dtype) -> tuple[str, int] | bool:
    """``(op, integer)`` equivalent to ``column <op> x`` on an integer column of ``dtype``,
    or a bool when the answer is the same for every non-null row."""
    if isinstance(x, float):
        if math.isnan(x):
            return op == "!="
        if math.isinf(x):
            if op in _ALWAYS:
                return _ALWAYS[op]
            return (op in ("<", "<=")) == (x > 0)
        if not x.is_integer():
            if op in _ALWAYS:
                return _ALWAYS[op]
            # no integer lies strictly between floor(x) and ceil(x)
            op, x = (">=", math.ceil(x)) if op in (">", ">=") else ("<=", math.floor(x))
        x = int(x)
    info = torch.iinfo(dtype)
    if info.min <= x <= info.max:
        return op, x
    if op in _ALWAYS:
        return _ALWAYS[op]
    above = x > info.max  # the literal lies past every value the column can hold
    return (op in ("<", "<=")) == above


def int_values(values: list, dtype: torch.dtype) -> list[int]:
    """The numbers of an ``in`` list an integer column of ``dtype`` can equal."""
    info = torch.iinfo(dtype)
    out = []
    for v in values:
        if isinstance(v, float):
            if not (math.isfinite(v) and v.is_integer()):
                continue
            v = int(v)
        if info.min <= v <= info.max:
            out.append(v)
    return out

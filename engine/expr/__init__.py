"""Milvus boolean filter expressions: parse (lark) -> typed AST -> a row mask per segment.

``compile_filter(text, schema, loaded)`` parses and type-checks once; the returned
:class:`Filter` evaluates to a ``(n,) bool`` tensor on each resident segment's device.
"""
from .evaluate import Filter, compile_filter

__all__ = ["Filter", "compile_filter"]

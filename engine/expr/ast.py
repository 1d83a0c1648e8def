"""Typed AST of filter expressions. Every node keeps ``pos``, the 0-based offset in the
expression text where it starts, so errors can put a caret under it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    pos: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Any  # int, float, str, bool, or a tuple of those (a list literal)


@dataclass(frozen=True, slots=True)
class FieldRef(Node):
    name: str
    path: tuple = ()  # JSON path keys / array indices, e.g. ("a", 0)


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class InList(Node):
    operand: Node
    values: Node  # a Literal holding a tuple once templates are filled
    negate: bool


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    items: tuple  # a list literal that still holds templates


@dataclass(frozen=True, slots=True)
class Template(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str  # lower-cased function name
    args: tuple


@dataclass(frozen=True, slots=True)
class Like(Node):
    operand: Node
    pattern: str


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    operand: Node
    negate: bool


@dataclass(frozen=True, slots=True)
class Arith(Node):
    op: str  # + - * / % **
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True, slots=True)
class And(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or(Node):
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node

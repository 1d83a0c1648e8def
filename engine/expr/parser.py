"""Grammar of Milvus filter expressions (lark, LALR) and the tree -> AST transform.

Covered: int/float/string/bool literals; ``== != < <= > >=`` with chaining
(``10 < age <= 20``); ``+ - * / % **``; ``in`` / ``not in`` lists; ``like``; ``is null`` /
``is not null``; ``exists json["key"]``; ``and or not`` and ``&& || !``; parentheses; ``field["key"][0]`` paths;
function calls (``array_contains(tags, 1)``, ``json_contains_any(meta["t"], [1, 2])``,
``json_contains_all(meta["l"], [[1, 2], [3]])`` with lists as elements,
``array_length(tags)``); templates ``{name}`` filled from ``filter_params``.
Any text that does not parse is a 1100 error quoting the expression with a caret.
"""
from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError

from ..errors import ParamError
from . import ast

GRAMMAR = r"""
?start: or_

?or_: and_
    | or_ _OR and_            -> or_op
?and_: not_
    | and_ _AND not_          -> and_op
?not_: predicate
    | _NOT not_               -> not_op
?predicate: arith
    | arith (COMP arith)+     -> compare
    | arith _NOT _IN values   -> not_in
    | arith _IN values        -> in_
    | arith _LIKE STRING      -> like
    | arith _IS _NULL         -> is_null
    | arith _IS _NOT _NULL    -> is_not_null
    | _EXISTS arith           -> exists
?arith: term
    | arith ADDOP term        -> binop
    | arith MINUS term        -> binop
?term: power
    | term MULOP power        -> binop
?power: unary
    | unary POW power         -> binop
?unary: atom
    | MINUS unary             -> neg
?atom: NUMBER                 -> number
    | STRING                  -> string
    | TRUE                    -> true
    | FALSE                   -> false
    | path
    | call
    | template
    | "(" or_ ")"
path: NAME ("[" (STRING | INT) "]")*
call: NAME "(" [arg ("," arg)*] ")"
?arg: or_
    | list_
template: "{" NAME "}"
?values: list_
    | template
list_: "[" [item ("," item)*] ","? "]"
?item: NUMBER                 -> number
    | MINUS NUMBER            -> neg_number
    | STRING                  -> string
    | TRUE                    -> true
    | FALSE                   -> false
    | template
    | list_

_OR.3: /or\b/i | "||"
_AND.3: /and\b/i | "&&"
_NOT.3: /not\b/i | /!(?!=)/
_IN.3: /in\b/i
_LIKE.3: /like\b/i
_EXISTS.3: /exists\b/i
_IS.3: /is\b/i
_NULL.3: /null\b/i
TRUE.3: /true\b/i
FALSE.3: /false\b/i
COMP: "==" | "!=" | "<=" | ">=" | "<" | ">"
POW.2: "**"
MULOP: "*" | "/" | "%"
ADDOP: "+"
MINUS: "-"
NUMBER: /(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?/
INT: /\d+/
STRING: /"(?:[^"\\]|\\.)*"/ | /'(?:[^'\\]|\\.)*'/
NAME: /\$?[A-Za-z_][A-Za-z0-9_]*/

%ignore /\s+/
"""

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def unquote(tok: str) -> str:
    body = tok[1:-1]

    def repl(m: re.Match) -> str:
        s = m.group(1)
        if s[0] == "u":
            return chr(int(s[1:], 16))
        return _ESCAPES.get(s, "\\" + s)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, body)


def _number(tok: str) -> int | float:
    if re.fullmatch(r"\d+", tok):
        return int(tok)
    return float(tok)


@v_args(inline=True)
class _ToAst(Transformer):
    def number(self, tok: Token) -> ast.Literal:
        return ast.Literal(tok.start_pos, _number(str(tok)))

    def neg_number(self, minus: Token, tok: Token) -> ast.Literal:
        return ast.Literal(minus.start_pos, -_number(str(tok)))

    def string(self, tok: Token) -> ast.Literal:
        return ast.Literal(tok.start_pos, unquote(str(tok)))

    def true(self, tok: Token) -> ast.Literal:
        return ast.Literal(tok.start_pos, True)

    def false(self, tok: Token) -> ast.Literal:
        return ast.Literal(tok.start_pos, False)

    def path(self, name: Token, *keys: Token) -> ast.FieldRef:
        path = tuple(unquote(str(k)) if k.type == "STRING" else int(k) for k in keys)
        return ast.FieldRef(name.start_pos, str(name), path)

    def list_(self, *items: ast.Node | None) -> ast.Node:
        items = tuple(i for i in items if i is not None)
        pos = items[0].pos if items else 0
        if all(isinstance(i, ast.Literal) for i in items):
            return ast.Literal(pos, tuple(i.value for i in items))
        return ast.ListExpr(pos, items)

    def template(self, name: Token) -> ast.Template:
        return ast.Template(name.start_pos - 1, str(name))

    def call(self, name: Token, *args: ast.Node | None) -> ast.Call:
        return ast.Call(name.start_pos, str(name).lower(), tuple(a for a in args if a is not None))

    def neg(self, minus: Token, operand: ast.Node) -> ast.Node:
        if isinstance(operand, ast.Literal) and isinstance(operand.value, (int, float)) \
                and not isinstance(operand.value, bool):
            return ast.Literal(minus.start_pos, -operand.value)
        return ast.Neg(minus.start_pos, operand)

    def binop(self, left: ast.Node, op: Token, right: ast.Node) -> ast.Arith:
        return ast.Arith(left.pos, str(op), left, right)

    def compare(self, *items) -> ast.Node:
        operands = items[0::2]
        ops = items[1::2]
        node: ast.Node | None = None
        for a, op, b in zip(operands, ops, operands[1:]):
            c = ast.Compare(a.pos, str(op), a, b)
            node = c if node is None else ast.And(node.pos, node, c)
        return node

    def in_(self, operand: ast.Node, values: ast.Node) -> ast.InList:
        return ast.InList(operand.pos, operand, values, False)

    def not_in(self, operand: ast.Node, values: ast.Node) -> ast.InList:
        return ast.InList(operand.pos, operand, values, True)

    def like(self, operand: ast.Node, pattern: Token) -> ast.Like:
        return ast.Like(operand.pos, operand, unquote(str(pattern)))

    def is_null(self, operand: ast.Node) -> ast.IsNull:
        return ast.IsNull(operand.pos, operand, False)

    def is_not_null(self, operand: ast.Node) -> ast.IsNull:
        return ast.IsNull(operand.pos, operand, True)

    def exists(self, operand: ast.Node) -> ast.IsNull:
        """``exists json["key"]``: the key is there (with a non-null value)."""
        return ast.IsNull(operand.pos, operand, True)

    def and_op(self, a: ast.Node, b: ast.Node) -> ast.And:
        return ast.And(a.pos, a, b)

    def or_op(self, a: ast.Node, b: ast.Node) -> ast.Or:
        return ast.Or(a.pos, a, b)

    def not_op(self, a: ast.Node) -> ast.Not:
        return ast.Not(max(a.pos - 1, 0), a)


_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


def caret(text: str, pos: int) -> str:
    return f"\n  {text}\n  {' ' * max(pos, 0)}^"


def expr_error(text: str, pos: int, what: str) -> ParamError:
    return ParamError(f"cannot parse expression: {text}, error: {what}{caret(text, pos)}\n"
                      "fix the expression (see the Milvus boolean expression syntax)")


@lru_cache(maxsize=256)
def parse(text: str) -> ast.Node:
    try:
        tree = _PARSER.parse(text)
        return _ToAst().transform(tree)
    except UnexpectedInput as e:
        pos = getattr(e, "pos_in_stream", None) or 0
        token = getattr(e, "token", None)
        what = f"unexpected {token!r}" if token is not None else "unexpected input"
        if getattr(e, "char", None) is not None:
            what = f"unexpected character {e.char!r}"
        raise expr_error(text, pos, what) from None
    except (VisitError, LarkError, ValueError, OverflowError) as e:
        raise expr_error(text, 0, str(e)) from None

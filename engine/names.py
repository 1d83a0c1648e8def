"""The one rule for names a user gives: collections, partitions, fields, indexes, aliases and
databases.

A name is 1 to 255 characters: an ASCII letter or ``_`` first, then ASCII letters, digits or
``_`` (Milvus's rule). It is checked with ``fullmatch``, so no trailing newline, NUL, path
separator, ``..`` or look-alike Unicode letter gets through. The one exception is the name
Hotset gives a JSON-path index left unnamed, such parts joined by ``/`` (``my_json/a/b``),
which ``check_index_lookup`` accepts where an index is looked up by name. Names only ever reach the
manifest and the catalog: every file and folder is named by an id the engine assigns, so a
name cannot steer a path even if this check were bypassed.

Errors are Milvus's 1100 with Milvus's wording ("Invalid collection name: x. the first
character of a collection name must be an underscore or letter"), which clients match on.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import ParamError

MAX_LENGTH = 255
_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_FIRST = re.compile(r"[A-Za-z_]")
DEFAULT_JSON_INDEX = re.compile(r"(?=.{1,255}$)[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_]+)+")


def shown(value: Any, limit: int = 64) -> str:
    """A name as it may appear in an error message: printable, and not 10k characters."""
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable() or not text.isascii():
        text = ascii(text)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} characters)"


# Words of the filter grammar: a field so named could never be used in a filter.
FILTER_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "is", "null", "true", "false",
                             "exists"})


def check_name(kind: str, name: Any) -> str:
    """``name`` if it follows the rule; else ParamError (1100) saying which part breaks it.
    ``kind`` is "collection", "partition", "field", "index", "alias" or "database"; a field
    name may not be a filter keyword (``and``, ``like``, ``exists``, ...)."""
    if isinstance(name, str) and _RULE.fullmatch(name):
        if kind == "field" and name.lower() in FILTER_KEYWORDS:
            raise ParamError(f"Invalid field name: {name}. {name} is a keyword of filter "
                             "expressions: pick another name")
        return name
    head = f"Invalid {kind} name: {shown(name)}. "
    if not isinstance(name, str):
        reason = f"the {kind} name must be a string, not {type(name).__name__}"
    elif not name:
        reason = f"{kind} name should not be empty"
    elif len(name) > MAX_LENGTH:
        reason = f"the length of a {kind} name must be less than {MAX_LENGTH + 1} characters"
    elif not _FIRST.fullmatch(name[0]):
        reason = f"the first character of a {kind} name must be an underscore or letter"
    else:
        reason = f"{kind} name can only contain numbers, letters and underscores"
    raise ParamError(head + reason)


def check_index_lookup(name: Any) -> str:
    """An index name to look up: a valid name, or a default JSON-path index name."""
    if isinstance(name, str) and DEFAULT_JSON_INDEX.fullmatch(name):
        return name
    return check_name("index", name)


def check_names(kind: str, names: Any) -> list[str]:
    """A list of names (a single string counts as one), each checked."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)):
        raise ParamError(f"{kind} names must be a list of strings, got {type(names).__name__}")
    return [check_name(kind, n) for n in names]

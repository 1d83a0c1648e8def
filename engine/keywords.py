"""Keywords a caller gives that Hotset reads, and the refusal of every other one.

pymilvus gives each ``MilvusClient`` method ``**kwargs``, so Hotset's embedded client takes
them too (code written for pymilvus runs unchanged). A keyword it does not read is 1100
naming it, never silently dropped: ``checked`` wraps each such method with what it reads
besides its named parameters (``READS`` in client.py). ``timeout`` bounds a call to a
server; an embedded call runs in this process to its end, so a timeout is refused there
too. ``consistency_level`` is read wherever Milvus takes it: Hotset is always strongly
consistent (a write is visible to the next read), which satisfies every level.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable

from .errors import ParamError
from .names import shown

CONSISTENCY = ("consistency_level",)


def refuse_unknown(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """A key Hotset does not read is 1100 naming it, never silently dropped."""
    known = tuple(known)
    for key in given:
        if key not in known:
            raise ParamError(f"{where} {shown(key)} is not supported by Hotset: leave it out "
                             f"(supported: {', '.join(known) or 'none'})")


def checked(method: Callable, reads: Iterable[str]) -> Callable:
    """``method`` refusing a keyword that is neither one of its named parameters nor in
    ``reads`` (the ones it takes through ``**kwargs``), and a ``timeout`` other than None."""
    params = inspect.signature(method).parameters
    named = [n for n, p in params.items()
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    known = tuple(n for n in (*named, *reads) if n not in ("self", "timeout"))
    at = named.index("timeout") if "timeout" in named else None
    where = f"{method.__qualname__.removesuffix('.__init__')}() keyword"

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        refuse_unknown((k for k in kwargs if k != "timeout" or at is None), known, where)
        timeout = args[at] if at is not None and len(args) > at else kwargs.get("timeout")
        if timeout is not None:
            raise ParamError(f"timeout={shown(timeout)}: a timeout bounds a call to a server, "
                             "and Hotset's embedded client runs each call in this process to "
                             "its end: leave it out (or serve the data directory with "
                             "`python -m engine serve` and pass it to pymilvus)")
        return method(*args, **kwargs)

    return call

"""Collection properties (``create_collection(properties=)``, ``alter_collection_properties``,
``drop_collection_properties``): the ones Hotset honours, checked once.

Milvus stores properties as strings. Hotset accepts only values that describe what it
does: ``mmap.enabled`` false (a loaded collection lives in device memory; nothing is
memory-mapped) and ``collection.autocompaction.enabled`` false (Hotset compacts only when
``compact`` is called). Any other key or value would change what is stored or returned,
and is refused with what to do instead, never stored and ignored.
"""
from __future__ import annotations

from typing import Any

from .errors import ParamError
from .names import shown

_ONLY_FALSE = {
    "mmap.enabled": "a loaded collection lives in device memory and nothing is "
                    "memory-mapped",
    "collection.autocompaction.enabled": "Hotset compacts only when compact() is called",
}
_REFUSED = {
    "collection.ttl.seconds": "rows do not expire in Hotset: delete them by filter instead",
}


def checked(properties: Any) -> dict[str, str]:
    """``properties`` as stored (strings), or ParamError naming the first one refused."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise ParamError(f"collection properties must be a dict, got "
                         f"{type(properties).__name__}")
    out = {}
    for key, value in properties.items():
        text = str(value).lower()
        if key in _ONLY_FALSE:
            if text != "false":
                raise ParamError(f"collection property {key}={shown(str(value))} is not "
                                 f"supported by Hotset ({_ONLY_FALSE[key]}): leave it out or "
                                 "set it to false")
            out[key] = text
            continue
        why = _REFUSED.get(key, "it would change what is stored or returned")
        raise ParamError(f"collection property {shown(str(key))} is not supported by Hotset "
                         f"({why}): leave it out")
    return out

"""Checksums of everything written to disk: XXH3-64 (the ``xxhash`` package).

XXH3 hashes at about 10 GB/s per core, several times the rate a shard is read at, so a
load verifies every byte it copies at a small cost. Large tensors are hashed in blocks of
``BLOCK`` bytes, each block by the reader thread that just read it (still in cache), so
verification runs in parallel with the reads instead of as a second pass.

A mismatch raises ``CorruptFile``, a ``ValueError`` naming the file, which the loader and
the open path turn into ``StorageError`` (rollback, file named, other collections unaffected).
"""
from __future__ import annotations

import json
from typing import Any

import xxhash

BLOCK = 4 << 20  # the reader's piece size (segments._PIECE): one hash per piece read


class CorruptFile(ValueError):
    """A file's bytes do not match the checksum written with it."""


def digest(data: Any) -> str:
    """XXH3-64 of a bytes-like object, as 16 hex digits."""
    return xxhash.xxh3_64_hexdigest(data)


def blocks(data: Any) -> list[str]:
    """One digest per ``BLOCK`` bytes of a contiguous bytes-like object (none for empty)."""
    view = memoryview(data).cast("B")
    return [digest(view[o:o + BLOCK]) for o in range(0, len(view), BLOCK)]


def check(data: Any, expected: str | None, what: object) -> None:
    """Raise CorruptFile unless ``data`` hashes to ``expected`` (None: nothing recorded)."""
    if expected is not None and digest(data) != expected:
        raise CorruptFile(f"{what} is damaged: its checksum does not match the one written "
                          "with it")


def sealed_json(obj: dict) -> bytes:
    """JSON text of ``obj`` with a ``checksum`` key over the rest (sorted keys)."""
    body = {k: v for k, v in obj.items() if k != "checksum"}
    text = json.dumps(body, indent=1, sort_keys=True)
    return json.dumps({**body, "checksum": digest(text.encode())}, indent=1,
                      sort_keys=True).encode()


def open_json(raw: bytes, what: object) -> dict:
    """The object of ``sealed_json`` text; CorruptFile if it is not JSON or not intact."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CorruptFile(f"{what} is damaged: not valid JSON ({e})") from None
    if not isinstance(obj, dict) or "checksum" not in obj:
        raise CorruptFile(f"{what} is damaged: it has no checksum")
    body = {k: v for k, v in obj.items() if k != "checksum"}
    check(json.dumps(body, indent=1, sort_keys=True).encode(), obj["checksum"], what)
    return body

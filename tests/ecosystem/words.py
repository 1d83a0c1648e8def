"""The sparse embedding both ecosystem flows use: a text's words, each one dimension (a
stable hash), weighted by its count. Imported by the flow scripts, which run in their own
environments from this folder."""
from __future__ import annotations

import re
import zlib


def words(text: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for w in re.findall(r"[a-z]+", text.lower()):
        d = zlib.crc32(w.encode()) % (2 ** 31)
        out[d] = out.get(d, 0.0) + 1.0
    return out

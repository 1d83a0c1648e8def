"""FLAT: an exact scan of every live row; nothing to train, rows in arrival order. BIN_FLAT:
the same for binary vectors."""
from __future__ import annotations

import kernels

from .base import VectorIndex


class Flat(VectorIndex):
    name = "FLAT"
    half_rows = True


class BinFlat(VectorIndex):
    """BIN_FLAT: an exact HAMMING or JACCARD scan of packed binary rows."""

    name = "BIN_FLAT"
    kind = "binary"

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        return kernels.binary_flat_search(queries, x, limit, metric, mask, lo=lo, hi=hi)

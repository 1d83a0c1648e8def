"""FLAT: an exact scan of every live row; nothing to train, rows in arrival order."""
from __future__ import annotations

from .base import VectorIndex


class Flat(VectorIndex):
    name = "FLAT"

"""Index specs, the vector index protocol and its registry. The maths lives in ``kernels/``."""
from . import registry
from .base import VectorIndex
from .spec import IndexParams, IndexSpec

__all__ = ["IndexParams", "IndexSpec", "VectorIndex", "registry"]

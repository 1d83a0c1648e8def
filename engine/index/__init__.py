"""Index specs and builds. The maths lives in ``kernels/``."""
from .spec import IndexParams, IndexSpec

__all__ = ["IndexParams", "IndexSpec"]

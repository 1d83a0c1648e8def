"""Index specs and builds. The maths lives in ``kernels/``."""
from . import ivf
from .spec import IndexParams, IndexSpec

__all__ = ["IndexParams", "IndexSpec", "ivf"]

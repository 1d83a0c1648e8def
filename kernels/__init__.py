"""Pure tensor functions: no engine imports, no I/O. Inputs and outputs live on the same
device. ``kernels.dispatch`` picks the implementation for a device; ``kernels.ref`` is the
plain-torch reference (the CPU path and the test oracle)."""
from .dispatch import available_backends, flat_search, merge_topk

__all__ = ["flat_search", "merge_topk", "available_backends"]

"""Pure tensor functions: no engine imports, no I/O. Inputs and outputs live on the same
device. ``kernels.dispatch`` picks the implementation for a device; ``kernels.ref`` is the
plain-torch reference (the CPU path and the test oracle)."""
from .binary import (binary_assign, binary_flat_search, binary_ivf_search, binary_kmeans,
                     binary_probe)
from .dispatch import (assign, available_backends, coarse_probe, flat_search, hnsw_search,
                       ivf_pq_search, ivf_search, ivf_sq8_search, kmeans, merge_topk, refine)

__all__ = ["flat_search", "ivf_search", "merge_topk", "kmeans", "assign", "coarse_probe",
           "available_backends", "binary_flat_search", "binary_ivf_search", "binary_kmeans",
           "binary_assign", "binary_probe", "hnsw_search", "ivf_sq8_search",
           "ivf_pq_search", "refine"]

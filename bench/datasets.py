"""Seeded synthetic data sets.

``manifold`` draws points near a low-dimensional curved manifold: recall-vs-nprobe curves
look like those of real embedding sets, unlike isotropic Gaussian blobs.
"""
from __future__ import annotations

import numpy as np


def manifold(n_rows: int, n_queries: int, dim: int = 128, intrinsic: int = 16,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``z ~ N(0, I_intrinsic)``, ``w ~ N(0, 1)`` of shape (intrinsic, dim), rows
    ``tanh(z @ w) + 0.05 * N(0, 1)`` as float32. One ``default_rng(seed)`` draws w, then z,
    then the noise; the first ``n_rows`` rows are the data, the rest the queries.
    Returns (data (n_rows, dim), queries (n_queries, dim)), both float32."""
    rng = np.random.default_rng(seed)
    n = n_rows + n_queries
    w = rng.standard_normal((intrinsic, dim))
    z = rng.standard_normal((n, intrinsic))
    x = np.tanh(z @ w)
    x += 0.05 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x[:n_rows], x[n_rows:]

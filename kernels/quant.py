"""Training and encoding of the quantised IVF indexes (IVF_SQ8, IVF_PQ); their list scans
are ``ref.ivf_sq8_search`` / ``ref.ivf_pq_search`` (and the Triton kernels in
``triton_quant.py``).

- SQ8 (faiss's ``QT_8bit``, range from the sample's min and max per dimension): a value
  ``v`` of dimension ``i`` is coded ``floor(255 * clamp((v - vmin_i) / vdiff_i, 0, 1))``
  and decoded to ``vmin_i + (code + 0.5) * vdiff_i / 255``, kept as ``code * scale + base``.
- PQ (``nbits`` = 8): the dimension is cut into ``m`` subspaces of ``d / m``; each has a
  codebook of 256 centroids trained by k-means on the residuals ``x - centroid`` of the
  rows' coarse lists; a row is coded by its residual's nearest codebook entry per
  subspace (one byte each).
COSINE rows are normalised before either is trained or applied, so COSINE scans as IP.
"""
from __future__ import annotations

import torch

from . import ref

KSUB = 256  # codebook entries per PQ subspace (nbits = 8)


def unit_rows(x: torch.Tensor, metric: str) -> torch.Tensor:
    """float32 rows, normalised for COSINE."""
    x = x.float()
    if metric == "COSINE":
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return x


def sq8_train(sample: torch.Tensor) -> dict[str, torch.Tensor]:
    """(n, d) float32 sample -> ``scale`` and ``base`` (d,) float32 of the decoder, and
    ``vmin`` / ``vdiff`` of the encoder."""
    vmin = sample.min(0).values
    vdiff = (sample.max(0).values - vmin).clamp_min(1e-12)
    scale = vdiff / 255.0
    return {"vmin": vmin, "vdiff": vdiff, "scale": scale, "base": vmin + 0.5 * scale}


def sq8_encode(x: torch.Tensor, vmin: torch.Tensor, vdiff: torch.Tensor) -> torch.Tensor:
    """(n, d) float32 -> (n, d) uint8 codes."""
    t = ((x - vmin) / vdiff).clamp_(0.0, 1.0)
    return (t * 255.0).floor_().clamp_(0, 255).to(torch.uint8)


def residuals(x: torch.Tensor, centroids: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
    """Each row minus the centroid of its list."""
    return x - centroids.float()[lists]


PQ_ITERS = 25  # faiss's ProductQuantizer trains each subspace with 25 k-means iterations


def pq_train(res: torch.Tensor, m: int, seed: int = 0) -> torch.Tensor:
    """(n, d) residuals -> (m, 256, d / m) float32 codebooks, one k-means per subspace."""
    from .dispatch import kmeans

    n, d = res.shape
    dsub = d // m
    return torch.stack([kmeans(res[:, j * dsub:(j + 1) * dsub].contiguous(), KSUB, "L2",
                               iters=PQ_ITERS, seed=seed + j) for j in range(m)])


def pq_encode(res: torch.Tensor, codebooks: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """(n, d) residuals -> (n, m) uint8 codes: the nearest codebook entry per subspace."""
    m, ksub, dsub = codebooks.shape
    out = torch.empty(res.shape[0], m, dtype=torch.uint8, device=res.device)
    cb_sq = (codebooks * codebooks).sum(-1)                          # (m, ksub)
    for s in range(0, res.shape[0], chunk):
        r = res[s:s + chunk]
        tables = ref.pq_tables(r, codebooks, "L2", cb_sq)              # (c, m, ksub)
        out[s:s + chunk] = tables.argmin(-1).to(torch.uint8)
    return out

"""Plain-torch reference kernels: the CPU path and the oracle for every fast kernel.

Conventions (enforced here, relied on everywhere):
- a *distance* is smaller-is-better: L2 is the squared Euclidean distance, IP and COSINE are
  the negated inner product / cosine similarity (callers negate back for the user);
- masked-out rows never appear: a query with fewer than ``k`` eligible rows is padded with
  index -1 and distance +inf;
- indices are rows of the ``x`` given (segment-local).
"""
from __future__ import annotations

import torch

METRICS = ("L2", "IP", "COSINE")
_INF = float("inf")


def pairwise_distance(q: torch.Tensor, x: torch.Tensor, metric: str,
                      q_sq: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, d) x (n, d) -> (nq, n) float32 distances, smaller is better."""
    q = q.float()
    x = x.float()
    if metric == "L2":
        if q_sq is None:
            q_sq = (q * q).sum(1)
        d = torch.addmm((x * x).sum(1)[None, :], q, x.T, alpha=-2.0)  # (nq, n)
        return d.add_(q_sq[:, None]).clamp_min_(0.0)
    if metric == "IP":
        return (q @ x.T).neg_()
    if metric == "COSINE":
        xn = x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)
        return (q @ xn.T).neg_()  # q is normalised by the caller (flat_search)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def merge_topk(d1: torch.Tensor, i1: torch.Tensor, d2: torch.Tensor, i2: torch.Tensor,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two (nq, *) candidate lists into the best ``k`` per row: (nq, k), (nq, k)."""
    d = torch.cat([d1, d2], dim=1)
    i = torch.cat([i1, i2], dim=1)
    kk = min(k, d.shape[1])
    best, pos = torch.topk(d, kk, dim=1, largest=False, sorted=True)
    idx = torch.gather(i, 1, pos)
    if kk < k:
        best, idx = _pad(best, idx, k)
    idx = torch.where(torch.isinf(best), torch.full_like(idx, -1), idx)
    return best, idx


def _pad(d: torch.Tensor, i: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    nq, have = d.shape
    d = torch.cat([d, torch.full((nq, k - have), _INF, device=d.device)], dim=1)
    i = torch.cat([i, torch.full((nq, k - have), -1, dtype=torch.int64, device=i.device)], dim=1)
    return d, i


def flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                mask: torch.Tensor | None = None, chunk: int = 1 << 16
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` of ``x`` (n, d) for each query of ``q`` (nq, d).

    ``mask`` (n,) bool keeps rows where True. Returns (nq, k) float32 distances (smaller is
    better) and (nq, k) int64 row indices, padded with +inf / -1.
    """
    nq = q.shape[0]
    q = q.float()
    if metric == "COSINE":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-30)
    q_sq = (q * q).sum(1) if metric == "L2" else None
    best_d = torch.full((nq, 0), _INF, device=q.device)
    best_i = torch.full((nq, 0), -1, dtype=torch.int64, device=q.device)
    n = x.shape[0]
    if mask is not None and bool(mask.all()):
        mask = None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d = pairwise_distance(q, x[start:stop], metric, q_sq)  # (nq, c)
        if mask is not None:
            d.masked_fill_(~mask[start:stop][None, :], _INF)
        kk = min(k, stop - start)
        cd, ci = torch.topk(d, kk, dim=1, largest=False, sorted=False)
        best_d, best_i = merge_topk(best_d, best_i, cd, ci + start, k)
    if best_d.shape[1] < k:
        best_d, best_i = _pad(best_d, best_i, k)
    return best_d, best_i

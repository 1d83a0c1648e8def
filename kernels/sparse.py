"""Sparse float vectors (SPARSE_FLOAT_VECTOR) scored by inner product.

Rows and queries come as CSR: ``indptr`` (n + 1,) int64, ``indices`` (nnz,) int64 (the
dimensions, any value below 2**32 - 1) and ``values`` (nnz,) float32. A segment's rows are
searched through **postings** (an inverted index, ``postings``): the distinct dimensions in
order, where each one's entries start, and the entries' rows and values, grouped by
dimension. A query batch is scored term at a time: every query entry is matched to its
dimension's posting list, each posting entry adds ``query value * row value`` to its
(query, row) score with one ``index_add_``, so the work is the posting entries the queries
touch, with no Python loop over queries or rows. A row that shares no dimension with a
query is no hit for it. Distances are ``-score`` (smaller is better), masked, range-bounded
and padded as ``ref.flat_search``'s; ``ref.sparse_search`` is the dense twin they are held
equal to.
"""
from __future__ import annotations

import torch

from .ref import _INF, _masked, _pad

SCORE_BLOCK = 1 << 24  # (queries x rows) scores held at once


def row_ids(indptr: torch.Tensor) -> torch.Tensor:
    """(nnz,) the row of each CSR entry."""
    n = indptr.numel() - 1
    return torch.repeat_interleave(torch.arange(n, device=indptr.device), indptr.diff())


def drop_smallest(indptr: torch.Tensor, values: torch.Tensor, ratio: float) -> torch.Tensor:
    """(nnz,) bool: the entries kept when the ``floor(ratio * len)`` smallest values of each
    row are dropped (Milvus's ``drop_ratio_search``; one row: ``drop_ratio_build``)."""
    if ratio <= 0 or values.numel() == 0:
        return torch.ones(values.numel(), dtype=torch.bool, device=values.device)
    rows = row_ids(indptr)
    by_value = torch.argsort(values, stable=True)
    order = by_value[torch.argsort(rows[by_value], stable=True)]  # row, then value
    rank = torch.arange(values.numel(), device=values.device) - indptr[:-1][rows[order]]
    drop = torch.floor(indptr.diff().double() * ratio).long()
    keep = torch.empty_like(rank, dtype=torch.bool)
    keep[order] = rank >= drop[rows[order]]
    return keep


def postings(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
             keep: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """CSR rows -> postings: ``dims`` (u,) int64 distinct dimensions in order, ``starts``
    (u + 1,) int64 where each one's entries begin, ``rows`` (m,) int32 and ``values`` (m,)
    float32 of the entries, grouped by dimension (rows ascending within one). ``keep``
    leaves entries out (``drop_ratio_build``)."""
    rows = row_ids(indptr).to(torch.int32)
    if keep is not None:
        indices, values, rows = indices[keep], values[keep], rows[keep]
    order = torch.argsort(indices, stable=True)
    dims, counts = torch.unique_consecutive(indices[order], return_counts=True)
    starts = torch.zeros(dims.numel() + 1, dtype=torch.int64, device=indices.device)
    starts[1:] = torch.cumsum(counts, 0)
    return {"dims": dims, "starts": starts, "rows": rows[order],
            "values": values[order].float()}


def sparse_search(q_indptr: torch.Tensor, q_indices: torch.Tensor, q_values: torch.Tensor,
                  post: dict[str, torch.Tensor], n: int, k: int,
                  mask: torch.Tensor | None = None, lo: float | None = None,
                  hi: float | None = None, block: int = SCORE_BLOCK
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` rows by inner product with each query (CSR), through ``post`` over ``n``
    rows: (nq, k) float32 distances (``-score``) and int64 row indices, +inf / -1 padded."""
    nq = q_indptr.numel() - 1
    device = q_values.device
    dims, starts = post["dims"], post["starts"]
    if dims.numel() == 0 or n == 0 or q_indices.numel() == 0:
        return _pad(torch.full((nq, 0), _INF, device=device),
                    torch.full((nq, 0), -1, dtype=torch.int64, device=device), k)
    at = torch.searchsorted(dims, q_indices).clamp_(max=dims.numel() - 1)
    found = dims[at] == q_indices
    begin = starts[at]
    length = torch.where(found, starts[at + 1] - begin, torch.zeros_like(begin))
    q_row = row_ids(q_indptr)
    step = max(1, block // n)
    outs_d, outs_i = [], []
    for a in range(0, nq, step):  # query blocks bound the score matrix, not per query
        b = min(a + step, nq)
        e0, e1 = int(q_indptr[a]), int(q_indptr[b])
        d = _block_scores(q_row[e0:e1] - a, q_values[e0:e1], begin[e0:e1], length[e0:e1],
                          post, n, b - a)
        _masked(d, mask, lo, hi)
        kk = min(k, n)
        bd, bi = torch.topk(d, kk, dim=1, largest=False, sorted=True)
        bi = torch.where(torch.isfinite(bd), bi, torch.full_like(bi, -1))
        outs_d.append(bd)
        outs_i.append(bi)
    return _pad(torch.cat(outs_d), torch.cat(outs_i), k)


def _block_scores(q_row: torch.Tensor, q_val: torch.Tensor, begin: torch.Tensor,
                  length: torch.Tensor, post: dict[str, torch.Tensor], n: int,
                  nq: int) -> torch.Tensor:
    """(nq, n) distances of one query block: -score where a row shares a dimension with the
    query, +inf elsewhere."""
    device = q_val.device
    total = int(length.sum())
    scores = torch.zeros(nq * n, dtype=torch.float32, device=device)
    touched = torch.zeros(nq * n, dtype=torch.bool, device=device)
    if total:
        entry = torch.repeat_interleave(torch.arange(length.numel(), device=device), length)
        first = torch.cumsum(length, 0) - length
        p = begin[entry] + torch.arange(total, device=device) - first[entry]
        target = q_row[entry] * n + post["rows"][p].long()
        scores.index_add_(0, target, post["values"][p] * q_val[entry])
        touched[target] = True
    d = scores.neg_().view(nq, n)
    return d.masked_fill_(~touched.view(nq, n), _INF)

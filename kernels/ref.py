"""Plain-torch reference kernels: the CPU path and the oracle for every fast kernel.

Conventions (enforced here, relied on everywhere):
- a *distance* is smaller-is-better: L2 is the squared Euclidean distance, IP and COSINE are
  the negated inner product / cosine similarity (callers negate back for the user);
- masked-out rows never appear: a query with fewer than ``k`` eligible rows is padded with
  index -1 and distance +inf;
- indices are rows of the ``x`` given (segment-local).
"""
from __future__ import annotations

from typing import Callable

import torch

METRICS = ("L2", "IP", "COSINE")
_INF = float("inf")


def pairwise_distance(q: torch.Tensor, x: torch.Tensor, metric: str,
                      q_sq: torch.Tensor | None = None,
                      x_sq: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, d) x (n, d) -> (nq, n) float32 distances, smaller is better. ``x_sq`` (n,) are
    the rows' squared norms when the caller has them (L2 and COSINE use them)."""
    q = q.float()
    half = x.is_cuda and x.dtype in (torch.float16, torch.bfloat16)
    if not half:
        x = x.float()
    if metric in ("L2", "COSINE") and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if metric == "L2" and not half:
        d = torch.addmm(x_sq[None, :], q, x.T, alpha=-2.0)  # (nq, n)
    else:
        d = dot(q, x)
        if metric == "L2":
            d.mul_(-2.0).add_(x_sq[None, :])
    if metric == "L2":
        if q_sq is None:
            q_sq = (q * q).sum(1)
        return d.add_(q_sq[:, None]).clamp_min_(0.0)
    if metric == "IP":
        return d.neg_()
    # COSINE: q is normalised by the caller (flat_search, ivf_search)
    return d.div_(x_sq.sqrt().clamp_min(1e-30)[None, :]).neg_()


def dot(q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(nq, d) float32 queries x (n, d) rows -> (nq, n) float32 inner products. Half-
    precision rows on CUDA are multiplied in their own dtype on the tensor cores with a
    float32 result (the queries rounded to it); elsewhere the rows are widened (on the CPU
    a float16 matmul runs 5x slower than widening a chunk and multiplying in float32)."""
    if x.is_cuda and x.dtype in (torch.float16, torch.bfloat16):
        return torch.mm(q.to(x.dtype), x.T, out_dtype=torch.float32)
    return q @ x.float().T


_POPCOUNT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.float32)


def binary_distance(q: torch.Tensor, x: torch.Tensor, metric: str) -> torch.Tensor:
    """(nq, b) x (n, b) packed uint8 rows -> (nq, n) HAMMING or JACCARD distances by
    popcount of XOR / AND / OR: the twin of ``binary.binary_distance`` (a matrix product of
    unpacked bits). Memory grows with nq * n * b: small inputs only (tests)."""
    table = _POPCOUNT.to(q.device)

    def pop(t: torch.Tensor) -> torch.Tensor:
        return table[t.long()].sum(-1)

    a, b = q[:, None, :], x[None, :, :]
    if metric == "HAMMING":
        return pop(a ^ b)
    if metric == "JACCARD":
        inter, union = pop(a & b), pop(a | b)
        return torch.where(union > 0, 1.0 - inter / union.clamp_min(1.0),
                           torch.zeros_like(union))
    raise ValueError(f"unknown binary metric {metric!r}")


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
                mask: torch.Tensor | None = None, chunk: int = 1 << 16,
                lo: float | None = None, hi: float | None = None,
                x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` of ``x`` (n, d) for each query of ``q`` (nq, d).

    ``mask`` (n,) bool keeps rows where True; distances outside ``[lo, hi)`` are dropped
    (range search). Returns (nq, k) float32 distances (smaller is
    better) and (nq, k) int64 row indices, padded with +inf / -1.
    """
    q = q.float()
    if metric == "COSINE":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-30)
    q_sq = (q * q).sum(1) if metric == "L2" else None

    def block(start: int, stop: int) -> torch.Tensor:  # (nq, stop - start)
        return pairwise_distance(q, x[start:stop], metric, q_sq,
                                 None if x_sq is None else x_sq[start:stop])

    return chunked_topk(block, q.shape[0], x.shape[0], k, q.device, mask, lo, hi, chunk)


def chunked_topk(block: Callable[[int, int], torch.Tensor], nq: int, n: int, k: int,
                 device: torch.device, mask: torch.Tensor | None = None,
                 lo: float | None = None, hi: float | None = None,
                 chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` over ``n`` rows whose distances ``block(start, stop)`` gives a chunk
    at a time: (nq, k) distances and row indices, masked and padded as ``flat_search``."""
    best_d = torch.full((nq, 0), _INF, device=device)
    best_i = torch.full((nq, 0), -1, dtype=torch.int64, device=device)
    if mask is not None and bool(mask.all()):
        mask = None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d = block(start, stop)
        _masked(d, None if mask is None else mask[start:stop], lo, hi)
        kk = min(k, stop - start)
        cd, ci = torch.topk(d, kk, dim=1, largest=False, sorted=False)
        best_d, best_i = merge_topk(best_d, best_i, cd, ci + start, k)
    if best_d.shape[1] < k:
        best_d, best_i = _pad(best_d, best_i, k)
    return best_d, best_i


def _masked(d: torch.Tensor, keep: torch.Tensor | None, lo: float | None,
            hi: float | None) -> torch.Tensor:
    """Set excluded entries of a (nq, n) distance block to +inf (in place)."""
    if keep is not None:
        d.masked_fill_(~keep[None, :], _INF)
    if lo is not None:
        d.masked_fill_(d < lo, _INF)
    if hi is not None:
        d.masked_fill_(d >= hi, _INF)
    return d


def assign(x: torch.Tensor, centroids: torch.Tensor, metric: str,
           chunk: int = 1 << 16) -> torch.Tensor:
    """(n, d) rows -> (n,) int64 index of the nearest centroid under ``metric``."""
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    c = centroids.float()
    if metric == "COSINE":
        c = c / c.norm(dim=1, keepdim=True).clamp_min(1e-30)
    for s in range(0, x.shape[0], chunk):
        xs = x[s:s + chunk].float()
        if metric == "COSINE":
            xs = xs / xs.norm(dim=1, keepdim=True).clamp_min(1e-30)
        out[s:s + chunk] = pairwise_distance(xs, c, "L2" if metric == "L2" else "IP").argmin(1)
    return out


def kmeans(x: torch.Tensor, k: int, metric: str = "L2", iters: int = 10,
           seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means: (n, d) -> (k, d) float32 centroids, seeded by k-means++ on a
    subsample. IP/COSINE cluster on the unit sphere (spherical k-means); an empty cluster
    is re-seeded next to the largest one."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = x.float()
    if metric in ("IP", "COSINE"):
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} rows, got {n}")
    cent = _kmeanspp(x, k, g)  # (k, d)
    for _ in range(iters):
        lab = assign(x, cent, "L2")  # (n,)
        sums = torch.zeros_like(cent).index_add_(0, lab, x)
        counts = torch.bincount(lab, minlength=k).to(x.dtype)
        empty = counts == 0
        cent = torch.where(empty[:, None], cent, sums / counts.clamp_min(1)[:, None])
        if bool(empty.any()):  # split the biggest clusters to refill empty ones
            big = torch.topk(counts, int(empty.sum())).indices
            noise = 1e-3 * torch.randn(len(big), x.shape[1], generator=g).to(x.device)
            cent[empty] = cent[big] + noise
        if metric in ("IP", "COSINE"):
            cent = cent / cent.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return cent


def _kmeanspp(x: torch.Tensor, k: int, g: torch.Generator, pool_per_centroid: int = 16
              ) -> torch.Tensor:
    """k-means++ seeding (D^2 sampling) on at most ``pool_per_centroid * k`` rows; one
    step per centroid. A step's distances to the new centroid are one matrix-vector
    product (``||p||^2 - 2 p.c + ||c||^2``, the pool's norms computed once): the direct
    ``((pool - c) ** 2).sum(1)`` wrote a pool-sized temporary each step and made seeding
    most of an index build (7.9 of 11 s training 1024 lists)."""
    n = x.shape[0]
    pool = x[torch.randperm(n, generator=g)[: min(n, pool_per_centroid * k)].to(x.device)]
    m = pool.shape[0]
    p_sq = (pool * pool).sum(1)  # (m,)

    def dist_to(c: torch.Tensor) -> torch.Tensor:  # (d,) -> (m,) squared distances
        return torch.addmv(p_sq + (c * c).sum(), pool, c, alpha=-2.0).clamp_min_(0.0)

    cent = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    cent[0] = pool[int(torch.randint(m, (1,), generator=g))]
    d2 = dist_to(cent[0])
    u = torch.rand(k, generator=g, dtype=torch.float64).to(x.device)
    for i in range(1, k):
        cum = torch.cumsum(d2.double(), 0)
        idx = torch.searchsorted(cum, (u[i] * cum[-1]).reshape(1)).clamp_max(m - 1)
        cent[i] = pool[idx[0]]
        d2 = torch.minimum(d2, dist_to(cent[i]))
    return cent


def coarse_probe(q: torch.Tensor, centroids: torch.Tensor, nprobe: int,
                 metric: str, c_sq: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, d) queries -> (nq, nprobe) int64 lists to scan, nearest first. ``c_sq`` (nlist,)
    are the centroids' squared norms when the caller keeps them (L2)."""
    qq = q.float()
    c = centroids.float()
    if metric == "COSINE":
        qq = qq / qq.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if metric == "L2":  # ||q||^2 is the same for every list of a query: rank without it
        c_sq = (c * c).sum(1) if c_sq is None else c_sq
        d = torch.addmm(c_sq[None, :], qq, c.T, alpha=-2.0)
    else:
        d = pairwise_distance(qq, c, "IP")
    return torch.topk(d, min(nprobe, c.shape[0]), dim=1, largest=False).indices


# The probed lists are scanned at once (one buffer, one top-k) for up to this many
# (query, list) pairs or up to this many queries, as long as queries x probed rows stay
# under SMALL_BATCH_CELLS. Measured on 300k x 128, nlist 512, 2 cores: 2x faster than the
# per-list loop at nq = 1, nprobe = 128; even at 2-4 queries; slower from 8 queries.
SMALL_BATCH_PAIRS = 64
SMALL_BATCH_QUERIES = 4
SMALL_BATCH_CELLS = 1 << 22


def _ivf_small(qf: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None, lo: float | None,
               hi: float | None, x_sq: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Small batches (a few queries): every query against every probed list, each list a
    view of ``x`` (no copy of its rows) written by one plain matmul into its slice of one
    (rows, nq) buffer; everything else is a handful of whole-buffer ops, the same count
    at any nprobe: the probed rows' numbers (one index for norms, mask and winners), the
    norms added, the (query, row) pairs whose list that query did not probe dropped, one
    top-k. ``||q||^2`` is added to the k winners only. None when the buffer would pass
    ``SMALL_BATCH_CELLS``. (A plain mm per list measured faster than addmm with the norms
    fused in: at one query the per-op cost, not the arithmetic, is most of the time.)"""
    nq = qf.shape[0]
    lists = probes.reshape(-1) if nq == 1 else torch.unique(probes)  # (L,); topk: distinct
    starts_t, ends_t = offsets[lists], offsets[lists + 1]
    starts, ends = starts_t.tolist(), ends_t.tolist()
    total = sum(ends) - sum(starts)
    if nq * total > SMALL_BATCH_CELLS:
        return None
    dev = qf.device
    if total == 0:
        return _pad(torch.empty(nq, 0, device=dev), torch.empty(nq, 0, dtype=torch.int64,
                                                               device=dev), k)
    exact = lo is not None or hi is not None  # range bounds need the true distance
    dt = torch.empty(total, nq, device=dev)                        # rows x queries
    qt = qf.T.contiguous() if metric == "L2" else qf.T.neg()       # IP/COSINE: -x.q
    cast = x.dtype != torch.float32
    at = 0
    for s, e in zip(starts, ends):
        if e > s:
            torch.mm(x[s:e].float() if cast else x[s:e], qt, out=dt[at:at + e - s])
            at += e - s
    lens = ends_t - starts_t
    rows = torch.repeat_interleave(starts_t - (torch.cumsum(lens, 0) - lens), lens,
                                   output_size=total)
    rows += torch.arange(total, device=dev)                        # (total,) rows of x
    if metric == "L2":  # ||x||^2 - 2 x.q
        d = torch.add(x_sq[rows][None, :], dt.T, alpha=-2.0)        # (nq, total)
        if exact:
            d.add_((qf * qf).sum(1, keepdim=True)).clamp_min_(0.0)
    elif metric == "COSINE":
        d = dt.T / x_sq[rows].sqrt_().clamp_min_(1e-30)[None, :]
    else:
        d = dt.T
    if nq > 1:  # (nq, total): was this row's list probed by this query?
        probed = (probes[:, :, None] == lists[None, None, :]).any(1)  # (nq, L)
        d.masked_fill_(~torch.repeat_interleave(probed, lens, dim=1, output_size=total), _INF)
    _masked(d, None if mask is None else mask[rows], lo, hi)
    kk = min(k, total)
    best, pos = torch.topk(d, kk, dim=1, largest=False)
    if metric == "L2" and not exact:
        best.add_((qf * qf).sum(1, keepdim=True)).clamp_min_(0.0)
    idx = rows[pos]
    if kk < k:
        best, idx = _pad(best, idx, k)
    return best, torch.where(torch.isinf(best), torch.full_like(idx, -1), idx)


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` of the rows of ``x`` that lie in each query's probed lists.

    ``x`` (n, d) is stored list by list: list ``l`` is rows ``offsets[l]:offsets[l+1]``
    (``offsets`` (nlist + 1,) int64). ``probes`` (nq, nprobe) names each query's lists.
    ``mask`` (n,) keeps rows where True; distances outside ``[lo, hi)`` are dropped (range
    search); ``x_sq`` (n,) are the rows' squared norms if known. Returns (nq, k) distances
    (smaller is better) and (nq, k) row indices, padded with +inf / -1. Queries are grouped
    by list, so each list is read once per batch; the per-list work is one matmul and one
    top-k, and the results are scattered into place once at the end.
    """
    nq, nprobe = probes.shape
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if metric in ("L2", "COSINE") and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    if mask is not None and bool(mask.all()):
        mask = None
    if nq * nprobe <= SMALL_BATCH_PAIRS or nq <= SMALL_BATCH_QUERIES:
        out = _ivf_small(qf, x, offsets, probes, k, metric, mask, lo, hi, x_sq)
        if out is not None:
            return out
    exact = lo is not None or hi is not None  # range bounds need the true distance
    cast = x.dtype != torch.float32
    sq_row = x_sq[None, :] if x_sq is not None else None             # (1, n) view

    def list_dist(r0: int, r1: int, qs: torch.Tensor) -> torch.Tensor:
        xs = x[r0:r1].float() if cast else x[r0:r1]
        if metric == "L2":  # ||x||^2 - 2 q.x ; ||q||^2 is added to the k winners only
            d = torch.addmm(sq_row[:, r0:r1], qs, xs.T, alpha=-2.0)
            return d.add_((qs ** 2).sum(1, keepdim=True)) if exact else d
        if metric == "IP":
            return (qs @ xs.T).neg_()
        return (qs @ xs.T).div_(sq_row[:, r0:r1].sqrt().clamp_min(1e-30)).neg_()

    d, i = scan_lists(qf, offsets, probes, k, lambda lst, r0, r1, qi, qs: list_dist(r0, r1, qs),
                      mask, lo, hi)
    if metric == "L2" and not exact:
        d = d.add_((qf * qf).sum(1, keepdim=True)).clamp_min_(0.0)
    return d, i


ListDistance = Callable[[int, int, int, torch.Tensor, torch.Tensor], torch.Tensor]


def scan_lists(q: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
               list_dist: ListDistance, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The IVF scan every list-ordered index shares: the (query, probed list) pairs grouped
    by list (``probe_pairs``), so each probed list is read once per batch;
    ``list_dist(list, r0, r1, qi, qs)`` gives the (len(qi), r1 - r0) distances of the
    queries ``qi`` (rows ``qs`` of ``q``) to the list's rows ``r0:r1``; each pair keeps
    its best min(k, longest list), masked and range-bounded, and one merge gives each
    query's top ``k`` (padded with +inf / -1)."""
    nq, nprobe = probes.shape
    order, uniq, counts = probe_pairs(probes)
    qidx = order // nprobe                                            # query of each pair
    starts = (torch.cumsum(counts, 0) - counts).tolist()
    off = offsets.tolist()
    # A (query, list) pair has at most that list's rows as candidates: keep each pair's
    # best min(k, longest list) (not k, which may be 16384 against lists of a few hundred).
    width = min(k, max((off[u + 1] - off[u] for u in uniq.tolist()), default=0))
    pair_ids, dists, rows = [], [], []
    q_pairs = q[qidx]                    # (nq * nprobe, ...): each list's queries, contiguous
    for lst, s, c in zip(uniq.tolist(), starts, counts.tolist()):
        r0, r1 = off[lst], off[lst + 1]
        if r1 == r0:
            continue
        d = list_dist(lst, r0, r1, qidx[s:s + c], q_pairs[s:s + c])
        if mask is not None or lo is not None or hi is not None:
            _masked(d, None if mask is None else mask[r0:r1], lo, hi)
        kk = min(k, r1 - r0)
        dd, ii = torch.topk(d, kk, dim=1, largest=False)
        ii += r0                                                      # rows of the index
        if kk < width:
            dd, ii = _pad(dd, ii, width)
        pair_ids.append(order[s:s + c])
        dists.append(dd)
        rows.append(ii)
    return merge_pairs(pair_ids, dists, rows, nq, nprobe, width, k, q.device)


def probe_pairs(probes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (query, probed list) pairs of ``probes`` (nq, nprobe) grouped by list: their
    flat positions (query * nprobe + slot) in list order, then query order, a list a
    query names twice kept once; and the distinct lists with their pair counts."""
    nq, nprobe = probes.shape
    flat_l = probes.reshape(-1)
    key = flat_l * nq + torch.arange(nq * nprobe, device=probes.device) // nprobe
    order = torch.argsort(key, stable=True)
    first = torch.ones_like(order, dtype=torch.bool)
    first[1:] = key[order][1:] != key[order][:-1]
    order = order[first]
    uniq, counts = torch.unique_consecutive(flat_l[order], return_counts=True)
    return order, uniq, counts


def merge_pairs(pair_ids: list, dists: list, rows: list, nq: int, nprobe: int, width: int,
                k: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each (query, probed list) pair's best ``width`` candidates (``dists`` / ``rows``
    blocks for the pairs ``pair_ids`` = query * nprobe + slot) -> each query's top ``k``,
    padded with +inf / -1."""
    best_d = torch.full((nq * nprobe, width), _INF, device=dev)
    best_i = torch.full((nq * nprobe, width), -1, dtype=torch.int64, device=dev)
    if pair_ids:
        pid = torch.cat(pair_ids)
        best_d[pid] = torch.cat(dists)
        best_i[pid] = torch.cat(rows)
    d, pos = torch.topk(best_d.reshape(nq, -1), min(k, nprobe * width), dim=1, largest=False)
    i = torch.gather(best_i.reshape(nq, -1), 1, pos)
    if d.shape[1] < k:
        d, i = _pad(d, i, k)
    return d, torch.where(torch.isinf(d), torch.full_like(i, -1), i)


def sparse_search(q_indptr: torch.Tensor, q_indices: torch.Tensor, q_values: torch.Tensor,
                  indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, k: int,
                  mask: torch.Tensor | None = None, lo: float | None = None,
                  hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Twin of ``sparse.sparse_search`` from the CSR rows themselves: rows and queries made
    dense over the dimensions the queries use, scores as one matrix product, and a row
    that shares no dimension with a query (its pattern product is 0) at +inf."""
    dims = torch.unique(q_indices)
    nq, n = q_indptr.numel() - 1, indptr.numel() - 1

    def dense(ptr: torch.Tensor, idx: torch.Tensor, val: torch.Tensor,
              rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = torch.repeat_interleave(torch.arange(rows, device=idx.device), ptr.diff())
        keep = torch.isin(idx, dims)
        col = torch.searchsorted(dims, idx[keep])
        out = torch.zeros(rows, dims.numel(), dtype=torch.float64, device=idx.device)
        out[row[keep], col] = val[keep].double()
        seen = torch.zeros_like(out)
        seen[row[keep], col] = 1.0
        return out, seen

    qd, qs = dense(q_indptr, q_indices, q_values, nq)
    xd, xs = dense(indptr, indices, values, n)

    def block(start: int, stop: int) -> torch.Tensor:
        d = -(qd @ xd[start:stop].T)
        d[(qs @ xs[start:stop].T) == 0] = _INF
        return d.float()

    return chunked_topk(block, nq, n, k, q_values.device, mask, lo, hi)


def binary_ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor,
                      probes: torch.Tensor, k: int, metric: str,
                      mask: torch.Tensor | None = None, lo: float | None = None,
                      hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Twin of ``binary.binary_ivf_search``: every row's popcount distance, rows outside a
    query's probed lists set to +inf, one exact top-k."""
    n = x.shape[0]
    lists = torch.searchsorted(offsets, torch.arange(n, device=x.device), right=True) - 1
    probed = (lists[None, :, None] == probes[:, None, :]).any(2)  # (nq, n)

    def block(start: int, stop: int) -> torch.Tensor:
        d = binary_distance(q, x[start:stop], metric)
        return d.masked_fill_(~probed[:, start:stop], _INF)

    return chunked_topk(block, q.shape[0], n, k, q.device, mask, lo, hi)


def sq8_decode(codes: torch.Tensor, scale: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """(n, d) uint8 scalar-quantised rows -> (n, d) float32: ``code * scale + base`` per
    dimension (``quant.sq8_train`` says what scale and base are)."""
    return torch.addcmul(base, codes.float(), scale)


def ivf_sq8_search(q: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                   base: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
                   metric: str, mask: torch.Tensor | None = None, lo: float | None = None,
                   hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``ivf_search`` over scalar-quantised rows (IVF_SQ8): each probed list is decoded
    once per batch and scanned as float rows (its squared norms from the decoded rows).
    COSINE rows were normalised before they were encoded, so COSINE is IP on unit
    queries."""
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)

    def list_dist(lst: int, r0: int, r1: int, qi: torch.Tensor,
                  qs: torch.Tensor) -> torch.Tensor:
        xs = sq8_decode(codes[r0:r1], scale, base)
        if metric != "L2":
            return (qs @ xs.T).neg_()
        d = torch.addmm((xs * xs).sum(1)[None, :], qs, xs.T, alpha=-2.0)
        return d.add_((qs * qs).sum(1, keepdim=True)).clamp_min_(0.0)

    return scan_lists(qf, offsets, probes, k, list_dist, mask, lo, hi)


def pq_tables(r: torch.Tensor, codebooks: torch.Tensor, metric: str,
              cb_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Asymmetric distance lookup tables: (c, d) query residuals (L2) or queries (IP) ->
    (c, m, ksub) float32, entry [j, s] the contribution of sub-code s in subspace j
    (L2: ``||cb||^2 - 2 r.cb``, the ``||r||^2`` term added per pair; IP: ``-q.cb``)."""
    m, ksub, dsub = codebooks.shape
    dots = torch.einsum("cmd,mkd->cmk", r.reshape(r.shape[0], m, dsub), codebooks)
    if metric != "L2":
        return dots.neg_()
    if cb_sq is None:
        cb_sq = (codebooks * codebooks).sum(-1)
    return torch.add(cb_sq[None], dots, alpha=-2.0)


def pq_lookup(tables: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(c, m, ksub) tables, (n, m) uint8 codes -> (c, n): the sum over subspaces of each
    row's table entries."""
    c, m, ksub = tables.shape
    flat = codes.long() + torch.arange(m, device=codes.device) * ksub      # (n, m)
    # entries gathered as rows of the (m * ksub, c) transposed table: one contiguous run
    # of c per (row, subspace), several times faster on the CPU than gathering columns
    rows = tables.reshape(c, m * ksub).T.contiguous().index_select(0, flat.reshape(-1))
    return rows.reshape(-1, m, c).sum(1).T


def ivf_pq_search(q: torch.Tensor, codes: torch.Tensor, centroids: torch.Tensor,
                  codebooks: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
                  k: int, metric: str, mask: torch.Tensor | None = None,
                  lo: float | None = None, hi: float | None = None,
                  cb_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``ivf_search`` over residual product-quantised rows (IVF_PQ), by asymmetric distance:
    a row of list ``l`` stands for ``centroid[l] + codebook[j][code_j]`` over subspaces
    ``j``. A list scanned for more queries than a sub-vector has dimensions is decoded once
    (its rows' residuals gathered from the codebooks, fewer values than the tables would
    take) and multiplied; otherwise by lookup tables: L2 per (query, list) pair a table of
    the query's residual ``q - c_l``, the distance ``||q - c_l||^2`` plus the row's table
    entries; IP (COSINE on unit rows and queries) one table per query, ``-q.c_l`` minus
    the row's entries."""
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    cent = centroids.float()
    m, ksub, dsub = codebooks.shape
    ip_tables = pq_tables(qf, codebooks, "IP") if metric != "L2" else None
    entries = codebooks.reshape(m * ksub, dsub)
    shift = torch.arange(m, device=codes.device) * ksub

    def list_dist(lst: int, r0: int, r1: int, qi: torch.Tensor,
                  qs: torch.Tensor) -> torch.Tensor:
        r = qs - cent[lst] if metric == "L2" else qs
        if qs.shape[0] > dsub:  # many queries: decode the list once and multiply
            rows = entries.index_select(0, (codes[r0:r1].long() + shift).reshape(-1))
            rows = rows.reshape(r1 - r0, m * dsub)                    # residuals r^
            if metric == "L2":  # ||r - r^||^2
                d = torch.addmm((rows * rows).sum(1)[None, :], r, rows.T, alpha=-2.0)
                return d.add_((r * r).sum(1, keepdim=True)).clamp_min_(0.0)
            return (r @ rows.T).add_((qs @ cent[lst])[:, None]).neg_()
        if metric == "L2":  # few queries: per-pair lookup tables
            d = pq_lookup(pq_tables(r, codebooks, "L2", cb_sq), codes[r0:r1])
            return d.add_((r * r).sum(1, keepdim=True)).clamp_min_(0.0)
        d = pq_lookup(ip_tables[qi], codes[r0:r1])
        return d.sub_((qs @ cent[lst])[:, None])

    return scan_lists(qf, offsets, probes, k, list_dist, mask, lo, hi)


def refine(q: torch.Tensor, x: torch.Tensor, cand: torch.Tensor, k: int, metric: str,
           lo: float | None = None, hi: float | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-rank candidates by exact distance: (nq, c) rows ``cand`` of ``x`` (-1: none) ->
    the best ``k`` (nq, k), range-bounded and padded. ``x`` may sit in host memory while
    the queries are on a device: only the candidates' rows are gathered and moved."""
    nq, c = cand.shape
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    none = cand < 0
    rows = x[cand.clamp_min(0).reshape(-1).to(x.device)].to(q.device).float()
    rows = rows.reshape(nq, c, -1)
    dots = torch.bmm(rows, qf[:, :, None])[:, :, 0]                    # (nq, c)
    if metric == "L2":
        d = ((rows * rows).sum(-1) - 2 * dots + (qf * qf).sum(1, keepdim=True)).clamp_min_(0.0)
    elif metric == "IP":
        d = -dots
    else:
        d = -dots / (rows * rows).sum(-1).sqrt().clamp_min(1e-30)
    d = _masked(d.masked_fill_(none, _INF), None, lo, hi)
    kk = min(k, c)
    best, pos = torch.topk(d, kk, dim=1, largest=False)
    idx = cand.gather(1, pos)
    if kk < k:
        best, idx = _pad(best, idx, k)
    return best, torch.where(torch.isinf(best), torch.full_like(idx, -1), idx)

"""HNSW search over a graph held as tensors, batched over queries, in plain torch.

The graph (built by faiss, ``engine/index/hnsw.py``) is: ``neighbors`` (n, 2M) int32,
each row's level-0 neighbours padded with -1; the upper levels as ``upper_nodes`` (u,)
int64, the nodes of level 1, then of level 2, ... each block ascending, with
``upper_starts`` (L + 1,) int64 where each level's block starts, and ``upper_neighbors``
(u, M) int32 their neighbours at that level; ``entry`` (1,) int64, the node search starts
from.

A search descends greedily through the upper levels (every query one step per round),
then runs a beam search on level 0: each query keeps its ``ef`` best candidates, expands
its best unexpanded one per round (its neighbours' distances are one batched gather and
product for all queries) and stops when all of its candidates are expanded. Rows the
``mask`` leaves out are walked through but never returned: they go into the candidates
(to navigate) and not into the results, as hnswlib's filtered search does. Distances
follow ``ref.py``'s conventions (smaller is better; -1 / +inf padding). The loop is over
rounds, never over queries or rows.
"""
from __future__ import annotations

import torch

from .ref import _INF, _pad

WIDTH = 4  # candidates each query expands per round (CAGRA's search width)


def _distance(q: torch.Tensor, x: torch.Tensor, ids: torch.Tensor, metric: str,
              x_sq: torch.Tensor | None) -> torch.Tensor:
    """(nq, m) distances from each query to rows ``ids`` (nq, m) (any id < 0: +inf)."""
    safe = ids.clamp_min(0)
    xs = x[safe].float()                                   # (nq, m, d)
    dot = torch.bmm(xs, q[:, :, None]).squeeze(2)          # (nq, m)
    if metric == "L2":
        sq = x_sq[safe] if x_sq is not None else (xs * xs).sum(-1)
        d = sq - 2.0 * dot + (q * q).sum(1, keepdim=True)
        d = d.clamp_min_(0.0)
    elif metric == "COSINE":
        norm = (x_sq[safe] if x_sq is not None else (xs * xs).sum(-1)).sqrt()
        d = -dot / norm.clamp_min(1e-30)
    else:
        d = -dot
    return d.masked_fill_(ids < 0, _INF)


def _descend(q: torch.Tensor, x: torch.Tensor, graph: dict[str, torch.Tensor], metric: str,
             x_sq: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(nq,) the nearest node each query reaches greedily on the upper levels, and its
    distance."""
    nq = q.shape[0]
    cur = graph["entry"].expand(nq).clone()
    cur_d = _distance(q, x, cur[:, None], metric, x_sq).squeeze(1)
    starts = graph["upper_starts"].tolist()
    nodes, nbrs = graph["upper_nodes"], graph["upper_neighbors"]
    for level in range(len(starts) - 1, 0, -1):
        block = nodes[starts[level - 1]:starts[level]]
        table = nbrs[starts[level - 1]:starts[level]]
        if block.numel() == 0:
            continue
        moving = torch.ones(nq, dtype=torch.bool, device=q.device)
        for _ in range(block.numel()):  # a greedy walk ends within that many steps
            at = torch.searchsorted(block, cur).clamp_max_(block.numel() - 1)
            cand = table[at].long()                               # (nq, M)
            cand = torch.where((block[at] == cur)[:, None], cand, torch.full_like(cand, -1))
            d = _distance(q, x, cand, metric, x_sq)
            best, pos = d.min(1)
            better = moving & (best < cur_d)
            if not bool(better.any()):
                break
            cur = torch.where(better, cand.gather(1, pos[:, None]).squeeze(1), cur)
            cur_d = torch.where(better, best, cur_d)
            moving = better
    return cur, cur_d


def hnsw_search(q: torch.Tensor, x: torch.Tensor, graph: dict[str, torch.Tensor], k: int,
                ef: int, metric: str, mask: torch.Tensor | None = None,
                lo: float | None = None, hi: float | None = None,
                x_sq: torch.Tensor | None = None, width: int = WIDTH
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` rows of ``x`` for each query through the HNSW ``graph`` with a beam of
    ``ef`` (at least ``k``): (nq, k) distances and row indices, padded with +inf / -1.
    COSINE queries are normalised here; ``x_sq`` are the rows' squared norms if known.
    Each round expands the ``width`` best unexpanded candidates of every query."""
    q = q.float()
    if metric == "COSINE":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-30)
    nq, dev = q.shape[0], q.device
    ef = max(ef, k)
    if x.shape[0] == 0:
        return _pad(torch.empty(nq, 0, device=dev), torch.empty(nq, 0, dtype=torch.int64,
                                                               device=dev), k)
    neighbors = graph["neighbors"]
    start, start_d = _descend(q, x, graph, metric, x_sq)
    cand = torch.full((nq, ef), -1, dtype=torch.int64, device=dev)
    cand_d = torch.full((nq, ef), _INF, device=dev)
    done = torch.ones((nq, ef), dtype=torch.bool, device=dev)
    cand[:, 0], cand_d[:, 0], done[:, 0] = start, start_d, False
    res, res_d = _results(cand, cand_d, mask, ef)
    w = min(width, ef)
    for _ in range(x.shape[0]):  # each round expands new nodes of every query
        pick = cand_d.masked_fill(done, _INF)
        best, slot = torch.topk(pick, w, dim=1, largest=False)          # (nq, w)
        live = torch.isfinite(best)
        if not bool(live.any()):
            break
        done.scatter_(1, slot, live | done.gather(1, slot))
        node = torch.where(live, cand.gather(1, slot), torch.zeros_like(slot))
        nb = neighbors[node].long().reshape(nq, -1)                     # (nq, w * 2M)
        nb = torch.where(live.repeat_interleave(neighbors.shape[1], 1), nb,
                         torch.full_like(nb, -1))
        nb = _first_of_each(nb)
        seen = (nb[:, :, None] == cand[:, None, :]).any(2)               # in the beam
        nb = nb.masked_fill_(seen, -1)
        nd = _distance(q, x, nb, metric, x_sq)
        cand, cand_d, done = _merge(cand, cand_d, done, nb, nd, ef)
        keep = nb if mask is None else nb.masked_fill(~mask[nb.clamp_min(0)], -1)
        keep = keep.masked_fill((keep[:, :, None] == res[:, None, :]).any(2), -1)
        res, res_d, _ = _merge_results(res, res_d, keep, nd.masked_fill(keep < 0, _INF), ef)
    if lo is not None:
        res_d = res_d.masked_fill(res_d < lo, _INF)
    if hi is not None:
        res_d = res_d.masked_fill(res_d >= hi, _INF)
    d, pos = torch.topk(res_d, min(k, ef), dim=1, largest=False)
    i = res.gather(1, pos)
    if d.shape[1] < k:
        d, i = _pad(d, i, k)
    return d, torch.where(torch.isinf(d), torch.full_like(i, -1), i)


def _first_of_each(ids: torch.Tensor) -> torch.Tensor:
    """``ids`` (nq, m) with every repeat of an id within its row set to -1."""
    s, order = torch.sort(ids, dim=1)
    dup = torch.zeros_like(s, dtype=torch.bool)
    dup[:, 1:] = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    return ids.scatter(1, order, s.masked_fill(dup, -1))


def _results(cand: torch.Tensor, cand_d: torch.Tensor, mask: torch.Tensor | None,
             ef: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The starting results: the start node where the mask keeps it."""
    if mask is None:
        return cand.clone(), cand_d.clone()
    ok = (cand >= 0) & mask[cand.clamp_min(0)]
    return cand.masked_fill(~ok, -1), cand_d.masked_fill(~ok, _INF)


def _merge_results(res, res_d, nb, nd, ef):
    """The ``ef`` best of a list and new entries, and where each came from (positions
    past the list's width are the new ones)."""
    d = torch.cat([res_d, nd], 1)
    best, pos = torch.topk(d, ef, dim=1, largest=False)
    return torch.cat([res, nb], 1).gather(1, pos), best, pos


def _merge(cand, cand_d, done, nb, nd, ef):
    """The ``ef`` best of the beam and the new neighbours (new ones not yet expanded)."""
    ids, best, pos = _merge_results(cand, cand_d, nb, nd, ef)
    flags = torch.cat([done, torch.zeros_like(nb, dtype=torch.bool)], 1)
    return ids, best, flags.gather(1, pos) | torch.isinf(best)

"""HNSW's level-0 beam search in Triton: one program per query, its beam in registers.

The twin is ``hnsw.hnsw_search`` (plain torch, batched over queries), and this kernel runs
the same algorithm round for round: the greedy descent through the upper levels is that
module's ``_descend`` (a few steps, in torch), then each round the program picks its
``W`` best unexpanded candidates, loads their level-0 neighbour rows (``R`` ids each,
``NB`` lanes), drops repeats and ids already in the beam, computes their distances, and
merges them into the beam (the ``ef`` best) and into the results (the ``ef`` best the
``mask`` keeps), until no candidate is left unexpanded. A beam entry travels as one int64
key: the distance's order-preserving bits (``triton_ivf._ordered``) in the high half,
then the row (31 bits), then an "expanded" bit, so sorting keys sorts the beam, marking a
row expanded never reorders it (rows in a beam are distinct), and a merge is
``triton_ivf._fold``'s bitonic step. The beam lives in registers, so ``ef`` is at most
``MAX_EF`` and ``W * R`` lanes at most ``MAX_LANES``; larger searches go through the twin.
Runs on CUDA and under ``TRITON_INTERPRET=1`` (``tests/kernels/test_triton_hnsw.py``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import hnsw as twin
from .ref import _pad
from .triton_ivf import BLOCK_D, _distance, _ordered, decode_keys

MAX_EF = 128
MAX_LANES = 128
NUM_WARPS = 4
_METRIC = {"L2": 0, "IP": 1, "COSINE": 2}


_INF_KEY = 0x7F800000FFFFFFFF  # distance +inf, row 2^31 - 1, expanded


@triton.jit
def _merge(keys, new, EF: tl.constexpr, ef):
    """The ``ef`` smallest of the ascending keys ``keys`` and the keys ``new``, ascending,
    padded with the infinite key past ``ef``."""
    top = ~tl.topk(~new, EF)
    out = tl.sort(tl.minimum(keys, tl.flip(top, 0)))
    return tl.where(tl.arange(0, EF) < ef, out, 0x7F800000FFFFFFFF)


@triton.jit
def _key(dist, rows):
    return (_ordered(dist.to(tl.int32, bitcast=True)).to(tl.int64) << 32) | \
        (rows.to(tl.int64) << 1)


@triton.jit
def _hnsw_beam(q_ptr, x_ptr, xsq_ptr, nbr_ptr, start_ptr, start_d_ptr, mask_ptr, out_ptr,
               d, R, ef, max_rounds,
               METRIC: tl.constexpr, HAS_MASK: tl.constexpr, EF: tl.constexpr,
               W: tl.constexpr, NB: tl.constexpr, BLOCK_D: tl.constexpr):
    qi = tl.program_id(0)
    slot = tl.arange(0, EF)
    lane = tl.arange(0, NB)
    inf_key = tl.full((EF,), 0x7F800000FFFFFFFF, tl.int64)
    start = tl.load(start_ptr + qi)
    start_d = tl.load(start_d_ptr + qi)
    start_key = _key(start_d, start)
    beam = tl.where(slot == 0, start_key, inf_key)
    keep0 = start_d < float("inf")
    if HAS_MASK:
        keep0 = keep0 & (tl.load(mask_ptr + start) != 0)
    res = tl.where(slot == 0, tl.where(keep0, start_key, inf_key), inf_key)
    q_sq = 0.0
    if METRIC == 0:
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D)
            qv = tl.load(q_ptr + qi * d + cols, mask=cols < d, other=0.0)
            q_sq += tl.sum(qv * qv, axis=0)
    go = start_d < float("inf")
    rounds = 0
    while go & (rounds < max_rounds):
        rounds += 1
        # the W best candidates not yet expanded
        pickable = tl.where((beam & 1) != 0, 0x7F800000FFFFFFFF, beam)
        picks = ~tl.topk(~pickable, W)                                   # ascending
        live = (picks >> 32) < 0x7F800000
        go = tl.max(live.to(tl.int32), axis=0) > 0
        ids = ((picks >> 1) & 0x7FFFFFFF).to(tl.int32)
        beam_ids = ((beam >> 1) & 0x7FFFFFFF).to(tl.int32)
        hit = (beam_ids[:, None] == ids[None, :]) & live[None, :]
        beam = beam | tl.max(hit.to(tl.int64), axis=1)                  # mark expanded
        # their neighbours: lane l is neighbour l % R of pick l // R
        which = tl.minimum(lane // R, W - 1)
        node = tl.gather(ids, which, 0)
        ok = (lane < W * R) & (tl.gather(live.to(tl.int32), which, 0) != 0)
        nb = tl.load(nbr_ptr + node.to(tl.int64) * R + lane % R, mask=ok, other=-1)
        nb = tl.sort(nb)                                 # a row named twice: kept once
        nb = tl.where((lane > 0) & (nb == tl.gather(nb, tl.maximum(lane - 1, 0), 0)), -1, nb)
        in_beam = (beam_ids[None, :] == nb[:, None]) & ((beam >> 32) < 0x7F800000)[None, :]
        nb = tl.where(tl.max(in_beam.to(tl.int32), axis=1) > 0, -1, nb)
        valid = nb >= 0
        safe = tl.maximum(nb, 0).to(tl.int64)
        acc = tl.zeros((NB,), dtype=tl.float32)
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D)
            cm = cols < d
            qv = tl.load(q_ptr + qi * d + cols, mask=cm, other=0.0)
            xv = tl.load(x_ptr + safe[:, None] * d + cols[None, :],
                         mask=valid[:, None] & cm[None, :], other=0.0).to(tl.float32)
            acc += tl.sum(xv * qv[None, :], axis=1)
        if METRIC == 1:
            dist = -acc
        else:
            dist = _distance(acc, tl.load(xsq_ptr + safe, mask=valid, other=1.0), q_sq,
                             METRIC)
        key = tl.where(valid, _key(dist, nb), 0x7F800000FFFFFFFF)
        beam = _merge(beam, key, EF, ef)
        keep = valid
        if HAS_MASK:
            keep = keep & (tl.load(mask_ptr + safe, mask=valid, other=0) != 0)
        in_res = (((res >> 1) & 0x7FFFFFFF).to(tl.int32)[None, :] == nb[:, None]) & \
            ((res >> 32) < 0x7F800000)[None, :]
        keep = keep & (tl.max(in_res.to(tl.int32), axis=1) == 0)
        res = _merge(res, tl.where(keep, key, 0x7F800000FFFFFFFF), EF, ef)
    tl.store(out_ptr + qi * EF + slot, res)


def lanes(width: int, r: int) -> int:
    return triton.next_power_of_2(max(max(width, 2) * r, 2))


def fits(ef: int, width: int, r: int) -> bool:
    """Whether a search of beam ``ef`` and ``width`` over a graph of degree ``r`` runs in
    this kernel (its beam and lanes in registers)."""
    return ef <= MAX_EF and lanes(width, r) <= MAX_LANES


def width_for(r: int) -> int:
    """The search width on a graph of degree ``r``: ``hnsw.WIDTH``, or less (a power of
    two) so that the neighbour lanes stay within ``MAX_LANES`` (M = 30: width 2)."""
    w = twin.WIDTH
    while w > 2 and w * r > MAX_LANES:
        w //= 2
    return w


def hnsw_search(q: torch.Tensor, x: torch.Tensor, graph: dict[str, torch.Tensor], k: int,
                ef: int, metric: str, mask: torch.Tensor | None = None,
                lo: float | None = None, hi: float | None = None,
                x_sq: torch.Tensor | None = None, width: int = twin.WIDTH,
                block_d: int = BLOCK_D) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``hnsw.hnsw_search`` (the same ``width``); ``fits`` must hold."""
    q = q.float()
    if metric == "COSINE":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-30)
    nq, dev = q.shape[0], q.device
    ef = max(ef, k)
    neighbors = graph["neighbors"]
    r = neighbors.shape[1]
    assert fits(ef, width, r), "a larger beam goes through hnsw.hnsw_search"
    if x.shape[0] == 0:
        return _pad(torch.empty(nq, 0, device=dev), torch.empty(nq, 0, dtype=torch.int64,
                                                               device=dev), k)
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    start, start_d = twin._descend(q, x, graph, metric, x_sq)
    EF = max(triton.next_power_of_2(ef), 2)
    w = max(triton.next_power_of_2(min(width, ef)), 2)
    out = torch.empty((nq, EF), dtype=torch.int64, device=dev)
    _hnsw_beam[(nq,)](
        q.contiguous(), x.contiguous(), (x_sq if x_sq is not None else q).float().contiguous(),
        neighbors.contiguous(), start.contiguous(), start_d.float().contiguous(),
        mask.to(torch.int8).contiguous() if mask is not None else out, out, q.shape[1], r,
        ef, x.shape[0], METRIC=_METRIC[metric], HAS_MASK=mask is not None, EF=EF, W=w,
        NB=max(lanes(w, r), EF), BLOCK_D=min(block_d, triton.next_power_of_2(q.shape[1])),
        num_warps=NUM_WARPS)
    dist, rows = decode_keys(out)
    rows = torch.where(rows >= 0, rows >> 1, rows)  # the low half is row << 1 | expanded
    if lo is not None:
        dist = dist.masked_fill(dist < lo, float("inf"))
    if hi is not None:
        dist = dist.masked_fill(dist >= hi, float("inf"))
    dd, pos = torch.topk(dist, min(k, EF), dim=1, largest=False)
    ii = rows.gather(1, pos)
    if dd.shape[1] < k:
        dd, ii = _pad(dd, ii, k)
    return dd, torch.where(torch.isinf(dd), torch.full_like(ii, -1), ii)

"""Fused IVF list scan + top-k in Triton: the full distance matrix is never written out.

Grid (nq, nprobe, split): each program takes one query, one of its probed lists and every
``split``-th block of ``BLOCK`` rows of that list. Per block it computes the distances in
registers (dot products over ``BLOCK_D``-wide slices of the dimension), drops rows the
``mask`` removes and distances outside ``[lo, hi)``, and folds the block into a running
top-``K`` kept in registers. A (distance, row) pair travels as one int64 key (the distance's
bits mapped to an order-preserving int32 in the high half, the row in the low half), so one
``tl.topk`` over the block's keys and one bitonic step against the running set (the
elementwise min of an ascending and a descending sorted run holds the ``K`` smallest of
both; a sort of ``K`` keys orders it again) keep pairs together and break ties by row.
Each program writes ``K`` keys; the host merges the (nq, nprobe * split * K) candidates
with one ``torch.topk``. (Triton 3.6, on the GPU image, has ``tl.topk`` for the largest
only, hence the ``~``; ``tl.bitonic_merge`` instead of the sort spills a little on 3.9.)

``K`` is a power of two >= k, at most ``MAX_K``; larger k goes through ``ref.ivf_search``.
``split`` > 1 only for small batches, so that a few queries still fill the device.

Runs on CUDA, and on the CPU under ``TRITON_INTERPRET=1`` (how CI holds it equal to its
plain-torch twin ``ref.ivf_search``). ``tests/kernels/test_triton_build.py`` compiles it
for sm_90 offline and checks that nothing spills to local memory.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

MAX_K = 64
BLOCK = 128
BLOCK_D = 32
NUM_WARPS = 4
_METRIC = {"L2": 0, "IP": 1, "COSINE": 2}


@triton.jit
def _ordered(bits):
    """int32 bits of a float32 -> an int32 whose signed order is the float's order (and
    back: the map is its own inverse)."""
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


@triton.jit
def _ivf_scan_topk(q_ptr, x_ptr, xsq_ptr, off_ptr, probe_ptr, mask_ptr, out_ptr,
                   nprobe, d, lo, hi, q_sq_ptr,
                   METRIC: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                   SPLIT: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    qi = tl.program_id(0)
    pj = tl.program_id(1)
    s = tl.program_id(2)
    lst, r0_64, r0, r1 = _probed_list(probe_ptr, off_ptr, qi, pj, nprobe)
    q_sq = tl.load(q_sq_ptr + qi) if METRIC == 0 else 0.0
    lane = tl.arange(0, BLOCK)
    best = tl.full((K,), 0x7F8000007FFFFFFF, tl.int64)  # distance +inf, row 2^31 - 1
    for start in range(r0 + s * BLOCK, r1, SPLIT * BLOCK):
        rows = start + lane
        inside = rows < r1
        x_blk = x_ptr + (r0_64 + (start - r0)) * d  # 64-bit base, 32-bit offsets in a block
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D)
            cm = cols < d
            qv = tl.load(q_ptr + qi * d + cols, mask=cm, other=0.0).to(tl.float32)
            xv = tl.load(x_blk + lane[:, None] * d + cols[None, :],
                         mask=inside[:, None] & cm[None, :], other=0.0).to(tl.float32)
            acc += tl.sum(xv * qv[None, :], axis=1)
        if METRIC == 1:
            dist = -acc
        else:
            dist = _distance(acc, tl.load(xsq_ptr + rows, mask=inside, other=1.0), q_sq,
                             METRIC)
        best = _fold(best, dist, inside, rows, mask_ptr, lo, hi, HAS_MASK, K)
    base = ((qi * nprobe + pj) * SPLIT + s) * K
    tl.store(out_ptr + base + tl.arange(0, K), best)


@triton.jit
def _probed_list(probe_ptr, off_ptr, qi, pj, nprobe):
    """The list a (query, probe) program scans: its number, first row (64-bit and 32-bit)
    and end row."""
    lst = tl.load(probe_ptr + qi * nprobe + pj)
    r0_64 = tl.load(off_ptr + lst)
    return lst, r0_64, r0_64.to(tl.int32), tl.load(off_ptr + lst + 1).to(tl.int32)


@triton.jit
def _distance(acc, xsq, q_sq, METRIC: tl.constexpr):
    """L2 (METRIC 0) or COSINE (2) distance from the dot products ``acc`` and the rows'
    squared norms ``xsq`` (IP is ``-acc``)."""
    if METRIC == 0:
        return tl.maximum(q_sq + xsq - 2.0 * acc, 0.0)
    return -acc / tl.maximum(tl.sqrt(xsq), 1e-30)


@triton.jit
def _fold(best, dist, inside, rows, mask_ptr, lo, hi, HAS_MASK: tl.constexpr,
          K: tl.constexpr):
    """Fold a block's distances into the running top-``K`` keys ``best`` (ascending):
    rows outside the list, masked out or outside ``[lo, hi)`` never enter."""
    keep = inside & (dist >= lo) & (dist < hi)
    if HAS_MASK:
        keep = keep & (tl.load(mask_ptr + rows, mask=inside, other=0) != 0)
    high = _ordered(dist.to(tl.int32, bitcast=True)).to(tl.int64) << 32
    key = tl.where(keep, high | rows.to(tl.int64), 0x7F8000007FFFFFFF)
    top = ~tl.topk(~key, K)  # the K smallest keys, ascending (~ reverses int order)
    return tl.sort(tl.minimum(best, tl.flip(top, 0)))


SKEW = 4  # a long list is taken to be up to this many times the mean list


def _split(pairs: int, rows: int, lists: int, block: int, device: torch.device) -> int:
    """Blocks of one list shared out between programs when there are too few (query, list)
    pairs to fill the device: about four programs per multiprocessor, no more than a long
    list (``SKEW`` x the mean, from shapes alone: reading the longest list's size would
    be a host sync on every call) has blocks. Programs past their list's end write no
    candidate."""
    if device.type != "cuda":
        return 1
    sms = _multiprocessors(device)
    want = max(1, (4 * sms) // max(pairs, 1))
    long_list = triton.cdiv(max(SKEW * rows // max(lists, 1), 1), block)
    return int(min(want, long_list, 64))


@functools.lru_cache(maxsize=None)
def _multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None, *, block: int = BLOCK,
               block_d: int = BLOCK_D, num_warps: int = NUM_WARPS,
               split: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_search``; ``k`` <= ``MAX_K``. The keyword arguments are
    tuning knobs (``python -m bench kernels`` sweeps them; tests use small blocks to cross
    block edges on small data)."""
    assert k <= MAX_K, "larger k goes through ref.ivf_search"
    nq, nprobe = probes.shape
    n, d = x.shape
    assert n < 2**31 - 1, "row numbers travel in 31 bits"
    qf = q.float().contiguous()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    if x_sq is None:
        x_sq = torch.empty(1, device=x.device)
    q_sq = (qf * qf).sum(1).contiguous()
    go = Launch.of(k, probes, offsets, n, mask, lo, hi, block, split, x.device)
    _ivf_scan_topk[go.grid](
        qf, x.contiguous(), x_sq.float().contiguous(), offsets.contiguous(),
        probes.contiguous(), go.mask, go.out, nprobe, d, go.lo, go.hi,
        q_sq, METRIC=_METRIC[metric], HAS_MASK=mask is not None, K=go.K, SPLIT=go.split,
        BLOCK=go.block, BLOCK_D=min(block_d, triton.next_power_of_2(d)), num_warps=num_warps)
    return go.result(k)


@dataclass(frozen=True, slots=True)
class Launch:
    """What every list-scan kernel's launch shares: the grid (query, probe, split), the
    run length ``K`` (a power of two >= k), the block, the output keys, the mask and range
    bounds as the kernel takes them; ``result`` merges the programs' keys."""

    grid: tuple[int, int, int]
    K: int
    block: int
    split: int
    out: torch.Tensor
    mask: torch.Tensor
    lo: float
    hi: float

    @classmethod
    def of(cls, k: int, probes: torch.Tensor, offsets: torch.Tensor, rows: int,
           mask: torch.Tensor | None, lo: float | None, hi: float | None, block: int,
           split: int | None, device: torch.device) -> "Launch":
        """Everything from shapes: no host sync (``rows``: the rows the lists hold)."""
        nq, nprobe = probes.shape
        if split is None:
            split = _split(nq * nprobe, rows, offsets.numel() - 1, block, device)
        kk = max(1 << max(0, (k - 1).bit_length()), 2)  # tl.topk/tl.sort: a run of two
        out = torch.empty((nq, nprobe * split * kk), dtype=torch.int64, device=device)
        return cls((nq, nprobe, split), kk, max(block, kk), split, out,
                   mask.to(torch.int8).contiguous() if mask is not None else out,
                   float("-inf") if lo is None else float(lo),
                   float("inf") if hi is None else float(hi))

    def result(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        keys, _ = torch.topk(self.out, min(k, self.out.shape[1]), dim=1, largest=False,
                             sorted=True)
        return decode_keys(keys)


def decode_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 (distance, row) keys -> float32 distances and int64 rows (-1 where none)."""
    high = (keys >> 32).to(torch.int32)
    bits = high ^ ((high >> 31) & 0x7FFFFFFF)
    dist = bits.view(torch.float32)
    rows = keys & 0xFFFFFFFF
    none = torch.isinf(dist) & (dist > 0)
    return dist, torch.where(none, torch.full_like(rows, -1), rows)

"""The list-grouped scan for large batches, in Triton, on the tensor cores: IVF_FLAT,
IVF_SQ8, IVF_PQ and FLAT.

``triton_ivf`` gives every (query, probed list) pair its own program, so a list probed by
``c`` queries is read ``c`` times. Here the pairs are grouped by list (``ref.probe_pairs``)
and cut into tiles of up to ``BQ`` pairs of one list; one program takes a tile and walks
its list in blocks of ``BR`` rows, each block's (BQ, BR) distances one ``tl.dot`` of the
tile's queries and the rows (TF32 for float32 rows unless ``precision="ieee"``; float16
rows natively), so a list is read once per tile instead of once per query. Each pair
keeps a running top-``K`` of (distance, row) keys in registers, folded as
``triton_ivf._fold`` does, row by row of the tile (masks and range bounds inside); the
programs write each pair's ``K`` keys where the per-pair kernel would, and the host merge
is the same (``triton_ivf.Launch``'s).

The rows a block multiplies are decoded in registers first (``DECODE``): float rows as
they are; IVF_SQ8 codes as ``code * scale + base`` per dimension; IVF_PQ codes as their
codebook entries (a gather per (row, dimension) from the small codebooks), against the
query's residual ``q - c_l`` (L2) or plus ``q.c_l`` (IP). Decoded rows' squared norms
are summed in the same pass. A FLAT segment is scanned as ``flat_lists`` consecutive
lists that every query probes; its tiles come from shapes alone (``flat_tiles``: no host
sync, so a small FLAT search runs from a CUDA graph like an IVF one).

Twins: ``ref.ivf_search``, ``ref.ivf_sq8_search``, ``ref.ivf_pq_search`` and
``ref.flat_search`` (``tests/kernels/test_triton_grouped.py``, under
``TRITON_INTERPRET=1`` in CI).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .ref import probe_pairs
from .triton_ivf import MAX_K, _distance, _multiprocessors, _ordered, decode_keys

BQ = 32     # pairs (queries of one list) a program takes
BR = 64     # rows of the list a block multiplies
BD = 32     # dimensions a tl.dot step takes
NUM_WARPS = 8  # a (BQ, BR) block of keys and a (BQ, K) running top-k across 256 threads
# the decoding variants (SQ8, PQ) keep a decoded block and its norms on top: ptxas left to
# itself caps them at 128 registers and spills; at 192 none does (kernels.build_check)
DECODE_MAXNREG = 192
FLAT_LIST_ROWS = 1024  # the shortest list a FLAT segment is cut into
KSUB = 256
_METRIC = {"L2": 0, "IP": 1, "COSINE": 2}
_FLOAT, _SQ8, _PQ = 0, 1, 2
_NONE = 0x7F8000007FFFFFFF  # the key of no candidate: distance +inf, row 2^31 - 1


@triton.jit
def _rows_block(x_ptr, a_ptr, rows, inside, cols, cm, d, scale, base,
                DECODE: tl.constexpr, M: tl.constexpr, DSUB: tl.constexpr):
    """The (BD, BR) block of rows ``rows``, dimensions ``cols``: float rows as stored,
    SQ8 codes decoded with ``scale``/``base``, PQ codes gathered from the codebooks
    ``a_ptr`` ((M, 256, DSUB) float32)."""
    keep = cm[:, None] & inside[None, :]
    if DECODE == 0:
        return tl.load(x_ptr + rows[None, :] * d + cols[:, None], mask=keep, other=0.0)
    elif DECODE == 1:
        code = tl.load(x_ptr + rows[None, :] * d + cols[:, None], mask=keep, other=0)
        return code.to(tl.float32) * scale[:, None] + base[:, None]
    else:
        sub = cols // DSUB
        code = tl.load(x_ptr + rows[None, :] * M + sub[:, None], mask=keep, other=0)
        return tl.load(a_ptr + (sub[:, None] * 256 + code.to(tl.int32)) * DSUB +
                       (cols % DSUB)[:, None], mask=keep, other=0.0)


@triton.jit
def _grouped_scan_topk(q_ptr, x_ptr, xsq_ptr, qsq_ptr, off_ptr, tile_list_ptr,
                       tile_start_ptr, tile_count_ptr, pair_q_ptr, pair_id_ptr, mask_ptr,
                       out_ptr, a_ptr, b_ptr, d, lo, hi,
                       METRIC: tl.constexpr, HAS_MASK: tl.constexpr, K: tl.constexpr,
                       BQ: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr,
                       HALF: tl.constexpr, IEEE: tl.constexpr, DECODE: tl.constexpr,
                       M: tl.constexpr, DSUB: tl.constexpr):
    t = tl.program_id(0)
    lst = tl.load(tile_list_ptr + t)
    p0 = tl.load(tile_start_ptr + t)
    cnt = tl.load(tile_count_ptr + t)
    row_q = tl.arange(0, BQ)
    q_ok = row_q < cnt
    qi = tl.load(pair_q_ptr + p0 + row_q, mask=q_ok, other=0)
    r0 = tl.load(off_ptr + lst)
    r1 = tl.load(off_ptr + lst + 1)
    q_sq = tl.load(qsq_ptr + qi, mask=q_ok, other=0.0) if METRIC == 0 else 0.0
    lane = tl.arange(0, BR)
    best = tl.full((BQ, K), 0x7F8000007FFFFFFF, tl.int64)
    for start in range(r0, r1, BR):
        rows = start + lane
        inside = rows < r1
        acc = tl.zeros((BQ, BR), dtype=tl.float32)
        x_sq = tl.zeros((BR,), dtype=tl.float32)      # decoded rows' squared norms
        r_sq = tl.zeros((BQ,), dtype=tl.float32)      # PQ L2: ||q - c_l||^2
        q_c = tl.zeros((BQ,), dtype=tl.float32)       # PQ IP: q.c_l
        for d0 in range(0, d, BD):
            cols = d0 + tl.arange(0, BD)
            cm = cols < d
            qv = tl.load(q_ptr + qi[:, None] * d + cols[None, :],
                         mask=q_ok[:, None] & cm[None, :], other=0.0)        # (BQ, BD)
            scale = 0.0
            base = 0.0
            if DECODE == 1:
                scale = tl.load(a_ptr + cols, mask=cm, other=0.0)
                base = tl.load(b_ptr + cols, mask=cm, other=0.0)
            if DECODE == 2:
                cent = tl.load(b_ptr + lst * d + cols, mask=cm, other=0.0)
                if METRIC == 0:
                    qv = qv - cent[None, :]
                    r_sq += tl.sum(qv * qv, axis=1)
                else:
                    q_c += tl.sum(qv * cent[None, :], axis=1)
            xv = _rows_block(x_ptr, a_ptr, rows, inside, cols, cm, d, scale, base,
                             DECODE, M, DSUB)                               # (BD, BR)
            if DECODE != 0 and METRIC == 0:
                x_sq += tl.sum(xv * xv, axis=0)
            if HALF:
                acc = tl.dot(qv.to(xv.dtype), xv, acc)
            elif IEEE:
                acc = tl.dot(qv, xv, acc, input_precision="ieee")
            else:
                acc = tl.dot(qv, xv, acc, input_precision="tf32")
        if METRIC == 1:
            dist = -(acc + q_c[:, None]) if DECODE == 2 else -acc
        else:
            if DECODE == 0:
                x_sq = tl.load(xsq_ptr + rows, mask=inside, other=1.0)
            if DECODE == 2:
                q_sq = r_sq
            dist = _distance(acc, x_sq[None, :], q_sq[:, None] if METRIC == 0 else 0.0,
                             METRIC)
        keep = inside[None, :] & (dist >= lo) & (dist < hi)
        if HAS_MASK:
            keep = keep & (tl.load(mask_ptr + rows, mask=inside, other=0) != 0)[None, :]
        high = _ordered(dist.to(tl.int32, bitcast=True)).to(tl.int64) << 32
        key = tl.where(keep, high | rows[None, :].to(tl.int64), 0x7F8000007FFFFFFF)
        top = ~tl.topk(~key, K)                                  # (BQ, K) ascending
        best = tl.sort(tl.minimum(best, tl.flip(top, 1)), 1)
    pid = tl.load(pair_id_ptr + p0 + row_q, mask=q_ok, other=0)
    tl.store(out_ptr + pid[:, None] * K + tl.arange(0, K)[None, :], best, mask=q_ok[:, None])


def tiles(probes: torch.Tensor, bq: int) -> tuple[torch.Tensor, ...]:
    """The (query, probed list) pairs grouped by list and cut into tiles of at most ``bq``
    pairs of one list: each tile's list, first pair and pair count, and each pair's query
    and flat id (query * nprobe + slot), pairs in list order."""
    nprobe = probes.shape[1]
    order, lists, counts = probe_pairs(probes)
    per = (counts + bq - 1) // bq                                       # tiles a list
    tile_list = torch.repeat_interleave(lists, per)
    first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, per)
    tile_no = torch.arange(tile_list.numel(), device=probes.device) - \
        torch.repeat_interleave(torch.cumsum(per, 0) - per, per)
    start = first + tile_no * bq
    count = torch.minimum(torch.repeat_interleave(counts, per) - tile_no * bq,
                          torch.full_like(start, bq))
    return tile_list, start, count, order // nprobe, order


def flat_tiles(nq: int, lists: int, bq: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``tiles`` for ``nq`` queries that each probe every one of ``lists`` lists (a FLAT
    segment), from the shapes alone: pair ``p`` (list ``p // nq``, query ``p % nq``)."""
    per = triton.cdiv(nq, bq)
    t = torch.arange(lists * per, device=device)
    tile_list, block = t // per, t % per
    start = tile_list * nq + block * bq
    count = torch.clamp(nq - block * bq, max=bq)
    p = torch.arange(lists * nq, device=device)
    pair_q = p % nq
    return tile_list, start, count, pair_q, pair_q * lists + p // nq


def flat_lists(n: int, nq: int, bq: int, device: torch.device) -> int:
    """How many consecutive lists a FLAT segment of ``n`` rows is cut into for ``nq``
    queries: enough tiles for about four programs a multiprocessor, no list shorter than
    ``FLAT_LIST_ROWS``."""
    sms = _multiprocessors(device) if device.type == "cuda" else 1
    want = triton.cdiv(4 * sms, triton.cdiv(nq, bq))
    return max(1, min(want, triton.cdiv(n, FLAT_LIST_ROWS)))


def _run(qf: torch.Tensor, rows: torch.Tensor, x_sq: torch.Tensor | None,
         offsets: torch.Tensor, cut: tuple, nprobe: int, k: int, metric: int,
         mask: torch.Tensor | None, lo: float | None, hi: float | None, *, bq: int, br: int,
         bd: int, precision: str, num_warps: int, decode: int = _FLOAT,
         aux: tuple = (None, None), m: int = 1, dsub: int = 1
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel over the tiles ``cut`` and merge each query's ``nprobe`` pairs."""
    nq, d = qf.shape
    assert k <= MAX_K, "larger k goes through the plain-torch scan"
    assert rows.shape[0] < 2**31 - 1, "row numbers travel in 31 bits"
    kk = max(1 << max(0, (k - 1).bit_length()), 2)
    tile_list, start, count, pair_q, pair_id = cut
    out = torch.full((nq * nprobe, kk), _NONE, dtype=torch.int64,
                     device=qf.device)                # pairs a repeated probe dropped: none
    if tile_list.numel():
        a, b = (t.float().contiguous() if t is not None else qf for t in aux)
        _grouped_scan_topk[(tile_list.numel(),)](
            qf, rows.contiguous(), (x_sq if x_sq is not None else qf).float().contiguous(),
            (qf * qf).sum(1).contiguous(), offsets.contiguous(), tile_list, start, count,
            pair_q, pair_id, mask.to(torch.int8).contiguous() if mask is not None else out,
            out, a, b, d, float("-inf") if lo is None else float(lo),
            float("inf") if hi is None else float(hi), METRIC=metric,
            HAS_MASK=mask is not None, K=kk, BQ=bq, BR=max(br, kk), BD=bd,
            HALF=rows.dtype in (torch.float16, torch.bfloat16), IEEE=precision == "ieee",
            DECODE=decode, M=m, DSUB=dsub, num_warps=num_warps,
            **({"maxnreg": DECODE_MAXNREG} if decode != _FLOAT else {}))
    keys, _ = torch.topk(out.reshape(nq, nprobe * kk), min(k, nprobe * kk), dim=1,
                         largest=False, sorted=True)
    return decode_keys(keys)


def _unit(q: torch.Tensor, metric: str) -> torch.Tensor:
    qf = q.float()
    if metric == "COSINE":
        qf = qf / qf.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return qf.contiguous()


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None, *, bq: int = BQ, br: int = BR,
               bd: int = BD, precision: str = "tf32", num_warps: int = NUM_WARPS
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_search``; ``k`` <= ``MAX_K``. ``precision`` "tf32" (the
    default on float32 rows) or "ieee" (exact float32 products)."""
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    return _run(_unit(q, metric), x, x_sq, offsets, tiles(probes, bq), probes.shape[1], k,
                _METRIC[metric], mask, lo, hi, bq=bq, br=br, bd=bd, precision=precision,
                num_warps=num_warps)


def flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                mask: torch.Tensor | None = None, lo: float | None = None,
                hi: float | None = None, x_sq: torch.Tensor | None = None, *,
                lists: int | None = None, bq: int = BQ, br: int = BR, bd: int = BD,
                precision: str = "tf32", num_warps: int = NUM_WARPS
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.flat_search``; ``k`` <= ``MAX_K``. The segment is cut into
    ``lists`` consecutive lists (``flat_lists`` unless given), every one probed by every
    query. No host sync."""
    n = x.shape[0]
    nq = q.shape[0]
    lists = lists or flat_lists(n, nq, bq, x.device)
    per = triton.cdiv(n, lists)
    offsets = torch.clamp(torch.arange(lists + 1, device=x.device) * per, max=n)
    if metric != "IP" and x_sq is None:
        x_sq = (x.float() ** 2).sum(1)
    return _run(_unit(q, metric), x, x_sq, offsets, flat_tiles(nq, lists, bq, x.device),
                lists, k, _METRIC[metric], mask, lo, hi, bq=bq, br=br, bd=bd,
                precision=precision, num_warps=num_warps)


def ivf_sq8_search(q: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                   base: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
                   metric: str, mask: torch.Tensor | None = None, lo: float | None = None,
                   hi: float | None = None, *, bq: int = BQ, br: int = BR, bd: int = BD,
                   precision: str = "tf32", num_warps: int = NUM_WARPS
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_sq8_search`` (COSINE rows were normalised when coded:
    IP on unit queries)."""
    return _run(_unit(q, metric), codes, None, offsets, tiles(probes, bq), probes.shape[1],
                k, 0 if metric == "L2" else 1, mask, lo, hi, bq=bq, br=br, bd=bd,
                precision=precision, num_warps=num_warps, decode=_SQ8, aux=(scale, base))


def ivf_pq_search(q: torch.Tensor, codes: torch.Tensor, centroids: torch.Tensor,
                  codebooks: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
                  k: int, metric: str, mask: torch.Tensor | None = None,
                  lo: float | None = None, hi: float | None = None,
                  cb_sq: torch.Tensor | None = None, *, bq: int = BQ, br: int = BR,
                  bd: int = BD, precision: str = "tf32", num_warps: int = NUM_WARPS
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``ref.ivf_pq_search`` (nbits 8; ``cb_sq`` is not needed: decoded
    rows' norms are summed as they are decoded)."""
    m, ksub, dsub = codebooks.shape
    assert ksub == KSUB
    return _run(_unit(q, metric), codes, None, offsets, tiles(probes, bq), probes.shape[1],
                k, 0 if metric == "L2" else 1, mask, lo, hi, bq=bq, br=br,
                bd=min(bd, triton.next_power_of_2(m * dsub)), precision=precision,
                num_warps=num_warps, decode=_PQ, aux=(codebooks, centroids), m=m, dsub=dsub)

"""Picks a kernel implementation per device. Optional backends (Triton, CuPy) are imported
here and nowhere else.

- CPU: the plain-torch reference (``ref``) for everything.
- CUDA: the IVF list scans (IVF_FLAT, IVF_SQ8, IVF_PQ) go through the fused Triton
  kernels (``triton_ivf``, ``triton_quant``) when Triton imports and
  ``k <= triton_ivf.MAX_K``; a float IVF_FLAT batch with many queries a list through the
  list-grouped tensor-core kernel (``triton_grouped``, ``GROUPED_MIN_PER_LIST``); exact (FLAT) search is cuBLAS matmul + torch.topk
  in chunks. Large searches are sliced so their temporaries stay bounded (``FLAT_CELLS``,
  ``IVF_BYTES``). ``HOTSET_KERNELS=torch`` forces the plain-torch path (for A/B benchmarks).
Asking for Triton explicitly (``HOTSET_KERNELS=triton``) where it is missing is an error
that says how to install it; nothing falls back silently.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os

import torch

from . import hnsw, ref

_triton_ivf = None


@functools.lru_cache(maxsize=None)
def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up once: searches run this per call)."""
    return importlib.util.find_spec(module) is not None


def available_backends() -> dict[str, bool]:
    return {"torch": True,
            "cuda": torch.cuda.is_available(),
            "triton": _installed("triton"),
            "cupy": _installed("cupy")}


def _mode() -> str:
    mode = os.environ.get("HOTSET_KERNELS", "auto").lower()
    if mode not in ("auto", "torch", "triton"):
        raise ValueError(f"HOTSET_KERNELS={mode!r}: use auto, torch or triton")
    return mode


def _triton_module(name: str):
    try:
        return importlib.import_module(f"kernels.{name}")
    except ImportError as e:
        raise RuntimeError("HOTSET_KERNELS=triton needs Triton: pip install triton "
                           f"(import failed: {e})") from None


def _triton():
    global _triton_ivf
    if _triton_ivf is None:
        _triton_ivf = _triton_module("triton_ivf")
    return _triton_ivf


def _triton_quant():
    return _triton_module("triton_quant")  # cached by the import system after the first


def _triton_hnsw():
    return _triton_module("triton_hnsw")


def hnsw_search(q: torch.Tensor, x: torch.Tensor, graph: dict, k: int, ef: int, metric: str,
                mask: torch.Tensor | None = None, lo: float | None = None,
                hi: float | None = None, x_sq: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """HNSW beam search: on CUDA (or ``HOTSET_KERNELS=triton``) the Triton kernel when its
    beam fits in registers (``triton_hnsw.fits``: ef <= 128), at the widest width its
    lanes allow; otherwise the plain-torch twin."""
    mode = _mode()
    if mode == "triton" or (mode == "auto" and x.is_cuda and _installed("triton")):
        th = _triton_hnsw()
        r = graph["neighbors"].shape[1]
        width = th.width_for(r)
        if th.fits(max(ef, k), width, r):
            return th.hnsw_search(q, x, graph, k, ef, metric, mask, lo, hi, x_sq,
                                  width=width)
    return hnsw.hnsw_search(q, x, graph, k, ef, metric, mask, lo, hi, x_sq)


# Bounds on the temporary memory of one search, whatever nq and k (up to 16384 each):
# FLAT holds a (queries, rows) distance block; IVF holds, per (query, probed list) pair, a
# copy of the query and that pair's best min(k, list size) candidates (float32 distance,
# int64 row). Larger searches go in slices of rows (FLAT) or of queries (IVF), each slice
# scanned as a batch.
FLAT_CELLS = 1 << 26     # 256 MB of float32 distances (CPU)
FLAT_CELLS_CUDA = 1 << 28  # 1 GB: up to 1024 queries keep the 2^18-row blocks cuBLAS likes
IVF_BYTES = 256 << 20
GRID_Y_MAX = 65535       # a CUDA grid's second dimension (the Triton kernel's nprobe)
# From this many queries per list (batch x nprobe / nlist) the list-grouped kernel
# (tensor cores, each list read once per tile of queries) replaces the per-pair one. A
# default until the crossover is measured on a device: below a tile's worth of queries a
# list the grouped kernel reads as much as the per-pair one and pays its grouping.
GROUPED_MIN_PER_LIST = 16


def flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                mask: torch.Tensor | None = None, lo: float | None = None,
                hi: float | None = None, x_sq: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    # (nq, d), (n, d) -> (nq, k) float32, (nq, k) int64
    chunk, cells = (1 << 18, FLAT_CELLS_CUDA) if x.is_cuda else (1 << 16, FLAT_CELLS)
    chunk = max(1024, min(chunk, cells // q.shape[0]))
    return ref.flat_search(q, x, k, metric, mask, chunk=chunk, lo=lo, hi=hi, x_sq=x_sq)


def query_step(nq: int, nprobe: int, k: int, dim: int, offsets: torch.Tensor) -> int:
    """How many queries one IVF pass takes so that its temporaries stay under IVF_BYTES (all
    of them, unless the search is large: only then are the list sizes looked at)."""
    if nq * nprobe * (k * 12 + dim * 4) <= IVF_BYTES:
        return nq
    longest = int((offsets[1:] - offsets[:-1]).max()) if offsets.numel() > 1 else 0
    return max(1, IVF_BYTES // (nprobe * (max(1, min(k, longest)) * 12 + dim * 4)))


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    # (nq, d), (n, d) list-ordered, (nlist+1,), (nq, nprobe) -> (nq, k), (nq, k)
    scan = ref.ivf_search
    if _fused(x, probes, k) and x.is_floating_point():
        per_list = q.shape[0] * probes.shape[1] / max(offsets.numel() - 1, 1)
        scan = _triton_module("triton_grouped").ivf_search \
            if per_list >= GROUPED_MIN_PER_LIST else _triton().ivf_search
    return _by_queries(lambda s: scan(q[s], x, offsets, probes[s], k, metric, mask, lo, hi,
                                      x_sq), q, probes, k, q.shape[1], offsets)


def _fused(x: torch.Tensor, probes: torch.Tensor, k: int) -> bool:
    """Whether an IVF list scan over ``x`` goes through a fused Triton kernel."""
    mode = _mode()
    want = mode == "triton" or (mode == "auto" and x.is_cuda and _installed("triton"))
    return want and k <= 64 and probes.shape[1] <= GRID_Y_MAX


def _by_queries(scan, q: torch.Tensor, probes: torch.Tensor, k: int, width: int,
                offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``scan(slice of queries)`` over the batch, in slices small enough that one pass's
    temporaries stay under IVF_BYTES (``query_step``)."""
    nq = q.shape[0]
    step = query_step(nq, probes.shape[1], k, width, offsets)
    if step >= nq:
        return scan(slice(None))
    parts = [scan(slice(s, s + step)) for s in range(0, nq, step)]
    return torch.cat([d for d, _ in parts]), torch.cat([i for _, i in parts])


def ivf_sq8_search(q: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                   base: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
                   metric: str, mask: torch.Tensor | None = None, lo: float | None = None,
                   hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    scan = _triton_quant().ivf_sq8_search if _fused(codes, probes, k) else ref.ivf_sq8_search
    return _by_queries(lambda s: scan(q[s], codes, scale, base, offsets, probes[s], k, metric,
                                      mask, lo, hi), q, probes, k, codes.shape[1], offsets)


def ivf_pq_search(q: torch.Tensor, codes: torch.Tensor, centroids: torch.Tensor,
                  codebooks: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
                  k: int, metric: str, mask: torch.Tensor | None = None,
                  lo: float | None = None, hi: float | None = None,
                  cb_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    scan = _triton_quant().ivf_pq_search if _fused(codes, probes, k) else ref.ivf_pq_search
    return _by_queries(lambda s: scan(q[s], codes, centroids, codebooks, offsets, probes[s],
                                      k, metric, mask, lo, hi, cb_sq),
                       q, probes, k, q.shape[1], offsets)


merge_topk = ref.merge_topk
refine = ref.refine
kmeans = ref.kmeans
assign = ref.assign
coarse_probe = ref.coarse_probe

"""Picks a kernel implementation per device. Optional backends (Triton, CuPy) are imported
here and nowhere else.

- CPU: the plain-torch reference (``ref``) for everything.
- CUDA (Triton installed, ``k <= triton_ivf.MAX_K``): the IVF list scans (IVF_FLAT,
  IVF_SQ8, IVF_PQ) through the fused per-pair kernels (``triton_ivf``, ``triton_quant``),
  or, from as many queries a list as the device's crossover says (``crossover.py``),
  through the list-grouped tensor-core kernel (``triton_grouped``); FLAT through the
  grouped kernel from the crossover's batch (by default always), else cuBLAS matmul +
  torch.topk in chunks; HNSW through ``triton_hnsw`` when its beam fits. Searches of up
  to ``GRAPH_MAX_NQ`` queries run from CUDA graphs (``graphs.py``; their path has no host
  sync). Large searches are sliced so their temporaries stay bounded (``FLAT_CELLS``,
  ``IVF_BYTES``).
- ``HOTSET_KERNELS=torch`` forces the plain-torch path, ``HOTSET_CUDA_GRAPHS=0`` launches
  every time (for A/B benchmarks). Asking for Triton explicitly (``HOTSET_KERNELS=triton``)
  where it is missing is an error that says how to install it; nothing falls back
  silently.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os

import torch

from . import crossover, graphs, hnsw, ref

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


def ivf_precision() -> str:
    """The grouped IVF scans' products on float32 rows: TF32 on the tensor cores
    (``HOTSET_TF32=1``, the default: an approximate index's distances to ~1e-3 relative)
    or exact float32 (``HOTSET_TF32=0``). FLAT is always exact."""
    mode = os.environ.get("HOTSET_TF32", "1")
    if mode not in ("0", "1"):
        raise ValueError(f"HOTSET_TF32={mode!r}: use 1 (TF32 products in the grouped IVF "
                         "scans) or 0 (exact float32)")
    return "tf32" if mode == "1" else "ieee"


def _graphs_on() -> bool:
    mode = os.environ.get("HOTSET_CUDA_GRAPHS", "1")
    if mode not in ("0", "1"):
        raise ValueError(f"HOTSET_CUDA_GRAPHS={mode!r}: use 1 (small searches replayed "
                         "from CUDA graphs) or 0 (always launched)")
    return mode == "1"


# Searches of up to this many queries on CUDA run from CUDA graphs (``graphs.py``): their
# time is launch overhead, not work.
GRAPH_MAX_NQ = 8
GRAPHS = graphs.Graphs()


def _graphed(t: torch.Tensor, nq: int) -> bool:
    return t.is_cuda and nq <= GRAPH_MAX_NQ and _graphs_on()


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
    if _wants_triton(x):
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


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def grouped(kind: str, device: torch.device, per_list: float) -> bool:
    """Whether a scan of ``kind`` ("ivf_flat", "ivf_sq8", "ivf_pq": ``per_list`` queries a
    list; "flat": the batch) goes to the list-grouped kernel: at or past the device's
    crossover (``crossover.py``: measured, or the defaults)."""
    return per_list >= crossover.thresholds(_device_name(device))[kind]


def flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                mask: torch.Tensor | None = None, lo: float | None = None,
                hi: float | None = None, x_sq: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    # (nq, d), (n, d) -> (nq, k) float32, (nq, k) int64
    nq = q.shape[0]
    if _wants_triton(x) and k <= 64 and x.is_floating_point() \
            and grouped("flat", x.device, nq):
        # exact float32 products (FLAT is exact); temporaries bounded by the kernel's cut
        scan = functools.partial(_triton_module("triton_grouped").flat_search,
                                 precision="ieee")
        if _graphed(x, nq):
            return GRAPHS.run("flat", lambda q_, m_: scan(q_, x, k, metric, m_, lo, hi, x_sq),
                              (q, mask), (x, x_sq), (k, metric, lo, hi))
        return scan(q, x, k, metric, mask, lo, hi, x_sq)
    return matmul_flat_search(q, x, k, metric, mask, lo, hi, x_sq)


def matmul_flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                       mask: torch.Tensor | None = None, lo: float | None = None,
                       hi: float | None = None, x_sq: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """FLAT as (cuBLAS) matmul + torch.topk over chunks of rows."""
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
    if x.is_floating_point():
        scan, graph = _pick("ivf_flat", x, probes, offsets, k,
                            lambda: _triton().ivf_search, ref.ivf_search)
    else:  # int8 rows: the plain-torch scan
        scan, graph = ref.ivf_search, False
    if graph:
        return GRAPHS.run("ivf_flat", lambda q_, p_, m_: scan(q_, x, offsets, p_, k, metric,
                                                             m_, lo, hi, x_sq),
                          (q, probes, mask), (x, offsets, x_sq), (k, metric, lo, hi))
    return _by_queries(lambda s: scan(q[s], x, offsets, probes[s], k, metric, mask, lo, hi,
                                      x_sq), q, probes, k, q.shape[1], offsets)


def _per_list(probes: torch.Tensor, offsets: torch.Tensor) -> float:
    """Queries a list gets, on average: (batch x nprobe) / nlist."""
    return probes.numel() / max(offsets.numel() - 1, 1)


def _fused(x: torch.Tensor, probes: torch.Tensor, k: int) -> bool:
    """Whether an IVF list scan over ``x`` goes through a fused Triton kernel."""
    return _wants_triton(x) and k <= 64 and probes.shape[1] <= GRID_Y_MAX


def _wants_triton(x: torch.Tensor) -> bool:
    mode = _mode()
    return mode == "triton" or (mode == "auto" and x.is_cuda and _installed("triton"))


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


def _pick(kind: str, rows: torch.Tensor, probes: torch.Tensor, offsets: torch.Tensor,
          k: int, per_pair, torch_twin):
    """The scan of an IVF ``kind``: (function, whether it may run from a CUDA graph):
    ``torch_twin`` unless a fused kernel applies, then the grouped kernel past the
    crossover, else the per-pair one (``per_pair()``)."""
    if not _fused(rows, probes, k):
        return torch_twin, False
    if grouped(kind, rows.device, _per_list(probes, offsets)):  # grouping reads counts
        scan = getattr(_triton_module("triton_grouped"), torch_twin.__name__)
        return functools.partial(scan, precision=ivf_precision()), False
    return per_pair(), _graphed(rows, probes.shape[0])


def ivf_sq8_search(q: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
                   base: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor, k: int,
                   metric: str, mask: torch.Tensor | None = None, lo: float | None = None,
                   hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    scan, graph = _pick("ivf_sq8", codes, probes, offsets, k,
                        lambda: _triton_quant().ivf_sq8_search,
                        ref.ivf_sq8_search)
    if graph:
        return GRAPHS.run("ivf_sq8", lambda q_, p_, m_: scan(q_, codes, scale, base, offsets,
                                                            p_, k, metric, m_, lo, hi),
                          (q, probes, mask), (codes, scale, base, offsets), (k, metric, lo, hi))
    return _by_queries(lambda s: scan(q[s], codes, scale, base, offsets, probes[s], k, metric,
                                      mask, lo, hi), q, probes, k, codes.shape[1], offsets)


def ivf_pq_search(q: torch.Tensor, codes: torch.Tensor, centroids: torch.Tensor,
                  codebooks: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
                  k: int, metric: str, mask: torch.Tensor | None = None,
                  lo: float | None = None, hi: float | None = None,
                  cb_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    scan, graph = _pick("ivf_pq", codes, probes, offsets, k,
                        lambda: _triton_quant().ivf_pq_search,
                        ref.ivf_pq_search)
    if graph:
        return GRAPHS.run("ivf_pq", lambda q_, p_, m_: scan(q_, codes, centroids, codebooks,
                                                           offsets, p_, k, metric, m_, lo, hi,
                                                           cb_sq),
                          (q, probes, mask), (codes, centroids, codebooks, offsets, cb_sq),
                          (k, metric, lo, hi))
    return _by_queries(lambda s: scan(q[s], codes, centroids, codebooks, offsets, probes[s],
                                      k, metric, mask, lo, hi, cb_sq),
                       q, probes, k, q.shape[1], offsets)


merge_topk = ref.merge_topk
refine = ref.refine
kmeans = ref.kmeans
assign = ref.assign


def coarse_probe(q: torch.Tensor, centroids: torch.Tensor, nprobe: int, metric: str,
                 c_sq: torch.Tensor | None = None) -> torch.Tensor:
    """``ref.coarse_probe``; a few queries on CUDA from a CUDA graph."""
    if _graphed(centroids, q.shape[0]):
        return GRAPHS.run("probe", lambda q_: (ref.coarse_probe(q_, centroids, nprobe, metric,
                                                                c_sq),),
                          (q,), (centroids, c_sq), (nprobe, metric))[0]
    return ref.coarse_probe(q, centroids, nprobe, metric, c_sq)

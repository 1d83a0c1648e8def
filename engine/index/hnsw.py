"""HNSW on float, half-precision and int8 vector fields (L2, IP, COSINE).

A graph per sealed segment, built when the segment is sealed (or when the index is created
over sealed rows) with faiss's ``IndexHNSWFlat``: a maintained, widely used builder, so
the graph is the one faiss users know, with Milvus's parameters ``M`` and
``efConstruction`` (COSINE builds on normalised rows with inner product). The graph leaves
faiss as tensors (``kernels/hnsw.py`` says which) and is stored beside the segment's
shards (``<stem>.hnsw.safetensors``); rows keep their order and no second copy of the
vectors exists. The graph stays on disk until a load makes it resident through the
allocator (part ``<field>/graph``), and searches run ``kernels.hnsw_search`` on it with
Milvus's search parameter ``ef`` (a beam of at least ``limit``).

Segments sealed before the index existed are given their graph when it is created (the
collection must be released: their layout files are written then), and the growing rows
are scanned exactly, as IVF_FLAT does. A filter that keeps under
``EXACT_BELOW`` of a segment's rows is answered by an exact scan of those rows (a graph
walk would wander through rows it may not return), as Milvus switches to brute force for
very selective filters.
"""
from __future__ import annotations

import numpy as np
import torch

import kernels

from ..errors import ParamError
from .base import Tensors, VectorIndex
from .ivf import _as_int

DEFAULT_M = 30            # Milvus's defaults
DEFAULT_EF_CONSTRUCTION = 360
DEFAULT_EF = 64
EXACT_BELOW = 1 / 16      # a filter keeping less of a segment is answered exactly
MAX_M = 2048


def _int_param(params: dict, name: str, default: int, lo: int, hi: int) -> int:
    v = _as_int(params.get(name, default))
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ParamError(f"Out of range in json: param '{name}' ({v!r}) should be in range "
                         f"[{lo}, {hi}]: give HNSW an integer {name} in that range")
    return v


def build_graph(vectors: torch.Tensor, m: int, ef_construction: int, metric: str) -> Tensors:
    """The HNSW graph of ``vectors`` (n, d), built by faiss, as tensors."""
    try:
        import faiss
    except ImportError:  # faiss-cpu is a dependency; a broken install says so
        raise ParamError("HNSW needs faiss-cpu to build its graph: pip install faiss-cpu")
    x = np.ascontiguousarray(vectors.float().cpu().numpy())
    if metric == "COSINE":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    kind = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWFlat(x.shape[1], m, kind)
    index.hnsw.efConstruction = ef_construction
    index.add(x)
    h = index.hnsw
    levels = faiss.vector_to_array(h.levels).astype(np.int64) - 1   # each node's top level
    offsets = faiss.vector_to_array(h.offsets).astype(np.int64)
    flat = faiss.vector_to_array(h.neighbors)
    cum = faiss.vector_to_array(h.cum_nneighbor_per_level).astype(np.int64)
    n = x.shape[0]
    base = offsets[:n, None]
    out = {"neighbors": torch.from_numpy(flat[base + np.arange(cum[1])].astype(np.int32))}
    nodes, nbrs, starts = [], [], [0]
    for level in range(1, int(levels.max(initial=0)) + 1):
        at = np.flatnonzero(levels >= level)
        nodes.append(at)
        nbrs.append(flat[offsets[at, None] + cum[level] + np.arange(cum[level + 1] - cum[level])])
        starts.append(starts[-1] + at.size)
    out["upper_nodes"] = torch.from_numpy(np.concatenate(nodes) if nodes
                                          else np.zeros(0, dtype=np.int64))
    out["upper_neighbors"] = torch.from_numpy(
        np.concatenate(nbrs).astype(np.int32) if nbrs else np.zeros((0, m), dtype=np.int32))
    out["upper_starts"] = torch.tensor(starts, dtype=torch.int64)
    out["entry"] = torch.tensor([max(int(h.entry_point), 0)], dtype=torch.int64)
    return out


class Hnsw(VectorIndex):
    name = "HNSW"
    layout_suffix = "hnsw"
    lazy_layout = True
    part_labels = {"neighbors": "graph", "upper_nodes": "graph", "upper_neighbors": "graph",
                   "upper_starts": "graph", "entry": "graph"}

    def check_params(self, params: dict) -> dict:
        out = dict(params)
        out["M"] = _int_param(params, "M", DEFAULT_M, 2, MAX_M)
        out["efConstruction"] = _int_param(params, "efConstruction",
                                           DEFAULT_EF_CONSTRUCTION, 1, 1 << 31)
        return out

    def train_rows(self, params: dict) -> tuple[int, int]:
        return 1, 1  # nothing to learn from the sample: "trained" once a row exists

    def order(self, vectors, trained, metric, device, params=None):
        """Rows keep their order; the layout is the segment's graph."""
        p = self.check_params(params or {})
        return torch.arange(vectors.shape[0]), build_graph(vectors, p["M"],
                                                           p["efConstruction"], metric)

    def probe(self, queries, resident, build, search, metric):
        """The beam width: ``ef`` from the search parameters (at least the limit)."""
        return _int_param(search, "ef", DEFAULT_EF, 1, 1 << 31)

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        if not layout or (mask is not None and float(mask.float().mean()) < EXACT_BELOW):
            return super().scan(queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq)
        ef = probe if probe is not None else DEFAULT_EF
        return kernels.hnsw_search(queries, x, layout, limit, ef, metric, mask, lo, hi, x_sq)

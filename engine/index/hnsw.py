"""HNSW on float, half-precision and int8 vector fields (L2, IP, COSINE).

A graph per sealed segment, built when the segment is sealed (or when the index is created
over sealed rows) with faiss's ``IndexHNSWFlat``: a maintained, widely used builder, so
the graph is the one faiss users know, with Milvus's parameters ``M`` and
``efConstruction`` (COSINE builds on normalised rows with inner product). The graph leaves
faiss as tensors (``kernels/hnsw.py`` says which) and is stored beside the segment's
shards (``<stem>.hnsw.safetensors``); rows keep their order and no second copy of the
vectors exists. The graph stays on disk until a load makes it resident through the
allocator (part ``<field>/graph``). On the CPU the graph is handed back to faiss
(``FaissGraph``) and faiss searches it; on other devices ``kernels.hnsw_search`` does (on
CUDA the Triton kernel ``kernels/triton_hnsw.py`` for beams up to 128, else its
plain-torch twin), with Milvus's search parameter ``ef`` (a beam of at least ``limit``)
either way.

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


def _faiss():
    try:
        import faiss
    except ImportError:  # faiss-cpu is a dependency; a broken install says so
        raise ParamError("HNSW needs faiss-cpu: pip install faiss-cpu") from None
    return faiss


def _rows(vectors: torch.Tensor, metric: str) -> np.ndarray:
    """The rows as faiss takes them: float32, normalised for COSINE."""
    x = np.ascontiguousarray(vectors.float().cpu().numpy())
    if metric == "COSINE":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    return x


def _new_index(faiss, d: int, m: int, metric: str):
    kind = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    return faiss.IndexHNSWFlat(d, m, kind)


def build_graph(vectors: torch.Tensor, m: int, ef_construction: int, metric: str) -> Tensors:
    """The HNSW graph of ``vectors`` (n, d), built by faiss, as tensors."""
    faiss = _faiss()
    x = _rows(vectors, metric)
    index = _new_index(faiss, x.shape[1], m, metric)
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


class FaissGraph:
    """A segment's graph handed back to faiss for searching on the CPU, where faiss's
    search (SIMD distances, a visited bitset, per-query early stop) is many times faster
    than a batched torch beam search. The faiss index is rebuilt exactly from the stored
    tensors (the same levels, offsets and neighbour lists faiss wrote) plus a copy of the
    rows, which faiss keeps in its own storage: ``nbytes`` counts both, so the allocator
    shows the copy (part ``<field>/graph``)."""

    def __init__(self, graph: Tensors, x: torch.Tensor, metric: str) -> None:
        faiss = _faiss()
        rows = _rows(x, metric)
        n, d = rows.shape
        index = _new_index(faiss, d, int(graph["neighbors"].shape[1]) // 2, metric)
        h = index.hnsw
        starts = graph["upper_starts"].tolist()
        nodes, upper = graph["upper_nodes"].numpy(), graph["upper_neighbors"].numpy()
        top = len(starts) - 1
        level = np.zeros(n, dtype=np.int64)
        for lv in range(1, top + 1):
            level[nodes[starts[lv - 1]:starts[lv]]] = lv
        cum = faiss.vector_to_array(h.cum_nneighbor_per_level).astype(np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(cum[level + 1], out=offsets[1:])
        flat = np.full(int(offsets[-1]), -1, dtype=np.int32)
        base = graph["neighbors"].numpy()
        flat[offsets[:n, None] + np.arange(base.shape[1])] = base
        for lv in range(1, top + 1):
            block = nodes[starts[lv - 1]:starts[lv]]
            flat[offsets[block, None] + cum[lv] + np.arange(cum[lv + 1] - cum[lv])] = \
                upper[starts[lv - 1]:starts[lv]]
        faiss.copy_array_to_vector((level + 1).astype(np.int32), h.levels)
        faiss.copy_array_to_vector(offsets.astype(np.uint64), h.offsets)
        faiss.copy_array_to_vector(flat, h.neighbors)
        h.entry_point, h.max_level = int(graph["entry"][0]), top
        index.storage.add(rows)
        index.ntotal = n
        self.index, self.metric, self.n = index, metric, n
        self.nbytes = flat.nbytes + offsets.nbytes + n * 4 + rows.nbytes

    def search(self, q: torch.Tensor, k: int, ef: int, mask: torch.Tensor | None,
               lo: float | None, hi: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef, k)
        if mask is not None:
            bits = np.packbits(mask.cpu().numpy(), bitorder="little")
            sel = faiss.IDSelectorBitmap(self.n, faiss.swig_ptr(bits))
            params.sel = sel  # bits and sel stay alive until the search returns
        d, i = self.index.search(_rows(q, self.metric), k, params=params)
        d = torch.from_numpy(d if self.metric == "L2" else -d)
        i = torch.from_numpy(i.astype(np.int64))
        d = d.masked_fill(i < 0, float("inf"))
        if lo is not None:
            d = d.masked_fill(d < lo, float("inf"))
        if hi is not None:
            d = d.masked_fill(d >= hi, float("inf"))
        d, order = torch.sort(d, dim=1)
        i = i.gather(1, order)
        return d, torch.where(torch.isinf(d), torch.full_like(i, -1), i)


class Hnsw(VectorIndex):
    name = "HNSW"
    layout_suffix = "hnsw"
    lazy_layout = True
    part_labels = {"neighbors": "graph", "upper_nodes": "graph", "upper_neighbors": "graph",
                   "upper_starts": "graph", "entry": "graph", "faiss": "graph"}

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

    def resident_layout(self, layout: dict, column, metric: str, device: torch.device) -> dict:
        """On the CPU, the graph as faiss's own index (``FaissGraph``); elsewhere the
        tensors, for ``kernels.hnsw_search``."""
        if device.type != "cpu":
            return layout
        return {"faiss": FaissGraph(layout, column, metric)}

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        if not layout or (mask is not None and float(mask.float().mean()) < EXACT_BELOW):
            return super().scan(queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq)
        ef = probe if probe is not None else DEFAULT_EF
        if "faiss" in layout:
            return layout["faiss"].search(queries, limit, ef, mask, lo, hi)
        return kernels.hnsw_search(queries, x, layout, limit, ef, metric, mask, lo, hi, x_sq)

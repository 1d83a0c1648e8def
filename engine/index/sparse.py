"""SPARSE_INVERTED_INDEX and SPARSE_WAND on SPARSE_FLOAT_VECTOR fields (metric IP).

Each sealed segment's postings (``kernels/sparse.py``: its entries grouped by dimension)
are built from the segment's resident rows when it becomes resident, and kept on the
device as the layout part ``<field>/postings`` (memory_info counts it); the Arrow rows stay
for output fields. Nothing is trained or stored beside the rows. A growing segment is
scanned through postings built for that scan (exact, as Milvus's brute force of growing
data). Both index types answer with the same exact term-at-a-time scan: Milvus's WAND and
MaxScore are ways to skip work on the CPU with the same results, so the names and
``inverted_index_algo`` are accepted and documented as one algorithm here.

Parameters, as Milvus's: ``drop_ratio_build`` (build: the smallest fraction of a segment's
values left out of its postings) and ``drop_ratio_search`` (search: the smallest fraction
of each query's values ignored), both in [0, 1). BM25's parameters belong to full-text
search, which needs an analyzer Hotset does not have: refused.
"""
from __future__ import annotations

from typing import Any

import torch

from kernels.sparse import drop_smallest, postings, row_ids, sparse_search

from ..errors import ParamError
from ..sparse import SparseRows, csr
from .base import Tensors, VectorIndex

ALGORITHMS = ("DAAT_MAXSCORE", "DAAT_WAND", "TAAT_NAIVE")
BM25_PARAMS = ("bm25_k1", "bm25_b", "bm25_avgdl")


def _ratio(params: dict, name: str) -> float:
    v = params.get(name, 0.0)
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ParamError(f"{name} must be a number in [0, 1), got {v!r}")
    return float(v)


class SparseInverted(VectorIndex):
    name = "SPARSE_INVERTED_INDEX"
    kind = "sparse"
    builds_layout = True
    part_labels = {"dims": "postings", "starts": "postings", "rows": "postings",
                   "values": "postings"}

    def check_params(self, params: dict) -> dict:
        for name in BM25_PARAMS:
            if name in params:
                raise ParamError(f"{name} is a BM25 parameter; BM25 full-text search needs an "
                                 "analyzer Hotset does not have: index sparse vectors you "
                                 "compute with metric IP")
        algo = params.get("inverted_index_algo", ALGORITHMS[0])
        if algo not in ALGORITHMS:
            raise ParamError(f"inverted_index_algo must be one of {list(ALGORITHMS)}, got "
                             f"{algo!r}")
        out = {**params, "inverted_index_algo": algo}
        if "drop_ratio_build" in params:
            out["drop_ratio_build"] = _ratio(params, "drop_ratio_build")
        return out

    def build_layout(self, column: Any, params: dict, device: torch.device) -> Tensors:
        """The postings of one segment's resident rows (an Arrow sparse column)."""
        rows = csr(column, device)
        ratio = float(params.get("drop_ratio_build", 0.0))
        keep = None
        if ratio > 0:
            whole = torch.tensor([0, rows.values.numel()], device=device)
            keep = drop_smallest(whole, rows.values, ratio)
        return postings(rows.indptr, rows.indices, rows.values, keep)

    def probe(self, queries, resident, build, search, metric):
        """The queries with each one's smallest ``drop_ratio_search`` values left out."""
        ratio = _ratio(search, "drop_ratio_search")
        if ratio == 0:
            return queries
        keep = drop_smallest(queries.indptr, queries.values, ratio)
        counts = torch.zeros(queries.num_rows, dtype=torch.int64, device=keep.device)
        counts.index_add_(0, row_ids(queries.indptr), keep.long())
        indptr = torch.zeros_like(queries.indptr)
        indptr[1:] = torch.cumsum(counts, 0)
        return SparseRows(indptr, queries.indices[keep], queries.values[keep])

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        q = probe if probe is not None else queries
        post = layout if layout else self.build_layout(x, {}, q.values.device)
        return sparse_search(q.indptr, q.indices, q.values, post, len(x), limit, mask, lo, hi)


class SparseWand(SparseInverted):
    name = "SPARSE_WAND"

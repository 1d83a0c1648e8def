"""What the CPU paths that hand a segment's index to faiss share (HNSW's graph, IVF_SQ8's
and IVF_PQ's coded lists): importing faiss with a clear error, a filter and the deleted
rows as faiss's bitmap selector, and faiss's answer in Hotset's conventions."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ParamError


def faiss_module() -> Any:
    try:
        import faiss
    except ImportError:  # faiss-cpu is a dependency; a broken install says so
        raise ParamError("this index needs faiss-cpu: pip install faiss-cpu") from None
    return faiss


def with_selector(params: Any, n: int, mask: torch.Tensor | None) -> list:
    """Give faiss search ``params`` a bitmap selector of the rows ``mask`` keeps (rows are
    faiss ids); returns what must stay alive until the search returns."""
    if mask is None:
        return []
    faiss = faiss_module()
    bits = np.packbits(mask.cpu().numpy(), bitorder="little")
    sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
    params.sel = sel
    return [bits, sel]


def results(d: np.ndarray, i: np.ndarray, metric: str, lo: float | None,
            hi: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """faiss's (distances or similarities, ids) -> Hotset's (nq, k) distances (smaller is
    better) and rows, range-bounded, sorted, padded with +inf / -1."""
    d = torch.from_numpy(d if metric == "L2" else -d)
    i = torch.from_numpy(i.astype(np.int64))
    d = d.masked_fill(i < 0, float("inf"))
    if lo is not None:
        d = d.masked_fill(d < lo, float("inf"))
    if hi is not None:
        d = d.masked_fill(d >= hi, float("inf"))
    d, order = torch.sort(d, dim=1)
    i = i.gather(1, order)
    return d, torch.where(torch.isinf(d), torch.full_like(i, -1), i)

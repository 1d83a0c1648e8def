"""Picks a kernel implementation per device. Optional backends (Triton, CuPy) are imported
here and nowhere else; today every device runs the plain-torch reference, which on CUDA is
cuBLAS matmul + torch.topk."""
from __future__ import annotations

import importlib.util

import torch

from . import ref


def available_backends() -> dict[str, bool]:
    return {"torch": True,
            "cuda": torch.cuda.is_available(),
            "triton": importlib.util.find_spec("triton") is not None,
            "cupy": importlib.util.find_spec("cupy") is not None}


def flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                mask: torch.Tensor | None = None, lo: float | None = None,
                hi: float | None = None, x_sq: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    # (nq, d), (n, d) -> (nq, k) float32, (nq, k) int64
    chunk = 1 << 18 if x.is_cuda else 1 << 16
    return ref.flat_search(q, x, k, metric, mask, chunk=chunk, lo=lo, hi=hi, x_sq=x_sq)


def ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, probes: torch.Tensor,
               k: int, metric: str, mask: torch.Tensor | None = None,
               lo: float | None = None, hi: float | None = None,
               x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    # (nq, d), (n, d) list-ordered, (nlist+1,), (nq, nprobe) -> (nq, k), (nq, k)
    return ref.ivf_search(q, x, offsets, probes, k, metric, mask, lo, hi, x_sq)


merge_topk = ref.merge_topk
kmeans = ref.kmeans
assign = ref.assign
coarse_probe = ref.coarse_probe

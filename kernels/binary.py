"""Binary vectors (BINARY_VECTOR): ``dim`` bits per row, packed eight to a uint8 with the
first bit in the high bit (``numpy.packbits``'s order, which Milvus and pymilvus use).

Distances are smaller-is-better counts, as ``ref.py``'s conventions ask: HAMMING is the
number of differing bits, JACCARD is ``1 - |a & b| / |a | b|`` (0 for two empty rows).
Both come from one matrix product of the unpacked bits, ``|a & b| = a · b``, which runs on
the BLAS / tensor-core path of the device; the bit counts fit float32 exactly (at most
32,768 bits a row). ``ref.binary_distance`` is the plain popcount twin it is held equal to.
"""
from __future__ import annotations

import torch

from .ref import chunked_topk

BINARY_METRICS = ("HAMMING", "JACCARD")
_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def unpack(x: torch.Tensor) -> torch.Tensor:
    """(n, b) uint8 -> (n, 8b) float32 bits, first bit first."""
    bits = _BITS.to(x.device)
    return (x[:, :, None] & bits).ne(0).reshape(x.shape[0], -1).float()


def binary_distance(q: torch.Tensor, x: torch.Tensor, metric: str,
                    q_bits: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, b) x (n, b) packed rows -> (nq, n) float32 distances. ``q_bits``: ``unpack(q)``
    when the caller has it."""
    qb = unpack(q) if q_bits is None else q_bits
    xb = unpack(x)
    inter = qb @ xb.T
    q_cnt, x_cnt = qb.sum(1)[:, None], xb.sum(1)[None, :]
    if metric == "HAMMING":
        return (q_cnt + x_cnt).sub_(inter, alpha=2.0)
    if metric == "JACCARD":
        union = q_cnt + x_cnt - inter
        return torch.where(union > 0, 1.0 - inter / union.clamp_min(1.0),
                           torch.zeros_like(union))
    raise ValueError(f"unknown binary metric {metric!r}; expected one of {BINARY_METRICS}")


def binary_flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                       mask: torch.Tensor | None = None, chunk: int = 1 << 15,
                       lo: float | None = None, hi: float | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` of packed rows ``x`` (n, b) for packed queries ``q`` (nq, b): (nq, k)
    float32 distances and int64 row indices, padded with +inf / -1 (as ``ref.flat_search``)."""
    q_bits = unpack(q)
    return chunked_topk(lambda start, stop: binary_distance(q, x[start:stop], metric, q_bits),
                        q.shape[0], x.shape[0], k, q.device, mask, lo, hi, chunk)

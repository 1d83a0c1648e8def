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

from .ref import chunked_topk, scan_lists

BINARY_METRICS = ("HAMMING", "JACCARD")
_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def unpack(x: torch.Tensor) -> torch.Tensor:
    """(n, b) uint8 -> (n, 8b) float32 bits, first bit first."""
    bits = _BITS.to(x.device)
    return (x[:, :, None] & bits).ne(0).reshape(x.shape[0], -1).float()


def pack(bits: torch.Tensor) -> torch.Tensor:
    """(n, 8b) 0/1 values -> (n, b) packed uint8 rows, first bit in the high bit."""
    weights = _BITS.to(bits.device).to(torch.int32)
    b = bits.reshape(bits.shape[0], -1, 8).to(torch.int32)
    return (b * weights).sum(-1).to(torch.uint8)


def binary_kmeans(x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """(k, b) packed centroids of packed rows ``x``: k-means on the bits (squared L2 of
    0/1 vectors is their HAMMING distance), each centroid rounded to its majority bits,
    as faiss's binary IVF trains."""
    from .dispatch import kmeans

    return pack(kmeans(unpack(x), k, "L2", seed=seed) >= 0.5)


def binary_distance(q: torch.Tensor, x: torch.Tensor, metric: str,
                    q_bits: torch.Tensor | None = None) -> torch.Tensor:
    """(nq, b) x (n, b) packed rows -> (nq, n) float32 distances. ``q_bits``: ``unpack(q)``
    when the caller has it."""
    if metric not in BINARY_METRICS:
        raise ValueError(f"unknown binary metric {metric!r}; expected one of {BINARY_METRICS}")
    return _distance_to(unpack(q) if q_bits is None else q_bits, unpack(x), metric)


def binary_flat_search(q: torch.Tensor, x: torch.Tensor, k: int, metric: str,
                       mask: torch.Tensor | None = None, chunk: int = 1 << 15,
                       lo: float | None = None, hi: float | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` of packed rows ``x`` (n, b) for packed queries ``q`` (nq, b): (nq, k)
    float32 distances and int64 row indices, padded with +inf / -1 (as ``ref.flat_search``)."""
    q_bits = unpack(q)
    return chunked_topk(lambda start, stop: binary_distance(q, x[start:stop], metric, q_bits),
                        q.shape[0], x.shape[0], k, q.device, mask, lo, hi, chunk)


def binary_assign(x: torch.Tensor, centroids: torch.Tensor, metric: str,
                  chunk: int = 1 << 15) -> torch.Tensor:
    """(n,) int64: the nearest packed centroid of each packed row (BIN_IVF_FLAT lists)."""
    c_bits = unpack(centroids)
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], chunk):  # bounded memory, not per row
        out[s:s + chunk] = _distance_to(unpack(x[s:s + chunk]), c_bits, metric).argmin(1)
    return out


def _distance_to(a_bits: torch.Tensor, b_bits: torch.Tensor, metric: str) -> torch.Tensor:
    """(na, nb) HAMMING or JACCARD distances between unpacked rows (bits on both sides):
    ``|a & b|`` is one matrix product."""
    inter = a_bits @ b_bits.T
    a_cnt, b_cnt = a_bits.sum(1)[:, None], b_bits.sum(1)[None, :]
    if metric == "HAMMING":
        return (a_cnt + b_cnt).sub_(inter, alpha=2.0)
    union = a_cnt + b_cnt - inter
    return torch.where(union > 0, 1.0 - inter / union.clamp_min(1.0), torch.zeros_like(union))


def binary_probe(q: torch.Tensor, centroids: torch.Tensor, nprobe: int,
                 metric: str) -> torch.Tensor:
    """(nq, nprobe) the lists each packed query scans, nearest centroid first."""
    d = binary_distance(q, centroids, metric)
    return torch.topk(d, min(nprobe, centroids.shape[0]), dim=1, largest=False).indices


def binary_ivf_search(q: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor,
                      probes: torch.Tensor, k: int, metric: str,
                      mask: torch.Tensor | None = None, lo: float | None = None,
                      hi: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` of the packed rows of ``x`` (stored list by list, ``offsets``) in each
    query's probed lists (``probes`` (nq, nprobe), a list named twice counting once), as
    ``ref.ivf_search`` for float rows:
    queries grouped by list, so each probed list is read once per batch, its distances one
    matrix product of unpacked bits, then one merge. (nq, k) distances and rows, padded."""
    return scan_lists(unpack(q), offsets, probes, k,
                      lambda lst, r0, r1, qi, qs: _distance_to(qs, unpack(x[r0:r1]), metric),
                      mask, lo, hi)

"""IVF_FLAT: coarse centroids per collection, rows stored list by list in each segment.

Decisions (see README):
- Centroids are trained once **per collection** (k-means in ``kernels`` on the collection's
  device, on a sample of at most ``SAMPLE_PER_LIST * nlist`` rows). One coarse
  quantisation per query batch then serves every segment.
- Each sealed segment is written in list order: all of its columns are permuted so that
  list ``l`` is the contiguous row range ``offsets[l]:offsets[l+1]``; the layout file
  ``<stem>.ivf.safetensors`` beside the shards holds ``offsets`` (nlist + 1,) int64. No
  second copy of the vectors exists, on disk or on the device.
- Segments sealed before the centroids existed, and the growing segment, are scanned
  exactly (flat); results are then a superset in quality, never worse.
- Rows have one order, so a collection has at most one index with a layout.
"""
from __future__ import annotations

import torch

import kernels

from ..errors import ParamError
from .base import Tensors, VectorIndex

SAMPLE_PER_LIST = 64
DEFAULT_NLIST = 128
DEFAULT_NPROBE = 8


def _as_int(v):
    """Milvus clients send index parameters as strings too ("nlist": "128")."""
    return int(v) if isinstance(v, str) and v.strip().lstrip("-").isdigit() else v


def check_nlist(params: dict) -> int:
    nlist = _as_int(params.get("nlist", DEFAULT_NLIST))
    if isinstance(nlist, bool) or not isinstance(nlist, int) or not 1 <= nlist <= 65536:
        raise ParamError(f"IVF_FLAT nlist must be an integer in [1, 65536], got {nlist!r}")
    return nlist


def check_nprobe(params: dict, nlist: int, default: int) -> int:
    nprobe = _as_int(params.get("nprobe", default))
    if isinstance(nprobe, bool) or not isinstance(nprobe, int) or not 1 <= nprobe <= 65536:
        raise ParamError(f"nprobe must be an integer in [1, 65536], got {nprobe!r}")
    return min(nprobe, nlist)


def train(sample: torch.Tensor, nlist: int, metric: str, device: torch.device,
          seed: int = 0) -> torch.Tensor:
    """(n, d) sample -> (nlist, d) float32 centroids on the CPU (trained on ``device``)."""
    return kernels.kmeans(sample.to(device), nlist, metric, seed=seed).cpu()


def list_order(vectors: torch.Tensor, centroids: torch.Tensor, metric: str,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation that sorts rows by list, and the list offsets (nlist + 1,)."""
    lab = kernels.assign(vectors.to(device), centroids.to(device), metric).cpu()
    return by_list(lab, centroids.shape[0])


def by_list(lab: torch.Tensor, nlist: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation that sorts rows by their list ``lab``, and the list offsets."""
    perm = torch.argsort(lab, stable=True)
    offsets = torch.zeros(nlist + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=nlist), 0)
    return perm, offsets


class IvfFlat(VectorIndex):
    """IVF_FLAT on float, half-precision and int8 vector fields."""

    name = "IVF_FLAT"
    half_rows = True
    trains = True
    layout_suffix = "ivf"
    part_labels = {"offsets": "list_offsets"}

    def check_params(self, params: dict) -> dict:
        return {**params, "nlist": check_nlist(params)}

    def train_rows(self, params: dict) -> tuple[int, int]:
        nlist = params["nlist"]
        return nlist, SAMPLE_PER_LIST * nlist

    def train(self, sample, params, metric, device) -> Tensors:
        return {"centroids": train(sample, params["nlist"], metric, device)}

    def order(self, vectors, trained, metric, device, params=None):
        perm, offsets = list_order(vectors, trained["centroids"], metric, device)
        return perm, {"offsets": offsets}

    def resident_parts(self, trained: Tensors, device: torch.device) -> Tensors:
        cent = trained["centroids"].to(device)
        c = cent.float()
        return {"centroids": cent, "centroid_norms": (c * c).sum(1)}

    def resident_bytes(self, trained: Tensors) -> int:
        cent = trained["centroids"]
        return (cent.numel() + cent.shape[0]) * 4

    def probe(self, queries, resident, build, search, metric):
        # checked first: refused even while untrained segments are scanned exactly
        nprobe = check_nprobe(search, build.get("nlist", DEFAULT_NLIST),
                              build.get("nprobe", DEFAULT_NPROBE))
        cent = resident.get("centroids")
        if cent is None:
            return None
        return kernels.coarse_probe(queries, cent, nprobe, metric,
                                    resident.get("centroid_norms"))

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        if probe is None or not layout:
            return super().scan(queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq)
        return kernels.ivf_search(queries, x, layout["offsets"], probe, limit, metric, mask,
                                  lo, hi, x_sq)


class BinIvfFlat(IvfFlat):
    """BIN_IVF_FLAT: IVF_FLAT for BINARY_VECTOR fields (HAMMING, JACCARD). Centroids are
    packed binary rows (k-means on the bits, rounded to majority bits); rows are assigned,
    probed and scanned by the query metric, through ``kernels/binary.py``."""

    name = "BIN_IVF_FLAT"
    kind = "binary"
    half_rows = False

    def train(self, sample, params, metric, device) -> Tensors:
        packed = sample.to(device, torch.uint8)  # the sample comes widened to float32, exactly
        return {"centroids": kernels.binary_kmeans(packed, params["nlist"]).cpu()}

    def order(self, vectors, trained, metric, device, params=None):
        cent = trained["centroids"].to(device)
        perm, offsets = by_list(kernels.binary_assign(vectors.to(device), cent, metric).cpu(),
                                cent.shape[0])
        return perm, {"offsets": offsets}

    def resident_parts(self, trained: Tensors, device: torch.device) -> Tensors:
        return {"centroids": trained["centroids"].to(device)}

    def resident_bytes(self, trained: Tensors) -> int:
        return trained["centroids"].numel()

    def probe(self, queries, resident, build, search, metric):
        nprobe = check_nprobe(search, build.get("nlist", DEFAULT_NLIST),
                              build.get("nprobe", DEFAULT_NPROBE))
        cent = resident.get("centroids")
        if cent is None:
            return None
        return kernels.binary_probe(queries, cent, nprobe, metric)

    def scan(self, queries, x, layout, probe, limit, metric, mask, lo, hi, x_sq):
        if probe is None or not layout:
            return kernels.binary_flat_search(queries, x, limit, metric, mask, lo=lo, hi=hi)
        return kernels.binary_ivf_search(queries, x, layout["offsets"], probe, limit, metric,
                                         mask, lo, hi)

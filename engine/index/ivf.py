"""IVF_FLAT: coarse centroids per collection, rows stored list by list in each segment.

Decisions (see README):
- Centroids are trained once **per collection** (k-means in ``kernels`` on the collection's
  device, on a sample of at most ``SAMPLE_PER_LIST * nlist`` rows) and stored as
  ``index/<index name>.safetensors``. One coarse quantisation per query batch then serves
  every segment.
- Each sealed segment is written in list order: all of its columns are permuted so that
  list ``l`` is the contiguous row range ``offsets[l]:offsets[l+1]``; ``<field>.ivf.safetensors``
  beside the shards holds ``offsets`` (nlist + 1,) int64. No second copy of the vectors
  exists, on disk or on the device.
- Segments sealed before the centroids existed, and the growing segment, are scanned
  exactly (flat); results are then a superset in quality, never worse.
- Rows have one order, so a collection has at most one IVF index.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import kernels

from ..errors import ParamError
from ..storage.files import fsync_path

SAMPLE_PER_LIST = 64
DEFAULT_NLIST = 128
DEFAULT_NPROBE = 8
AUTO_IVF_MIN_ROWS = 1_000_000
AUTO_NLIST = 1024
AUTO_NPROBE = 32


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
    perm = torch.argsort(lab, stable=True)
    offsets = torch.zeros(centroids.shape[0] + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=centroids.shape[0]), 0)
    return perm, offsets


def centroid_path(coll_dir: Path, index_name: str) -> Path:
    return coll_dir / "index" / f"{index_name}.safetensors"


def _save_durable(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write a safetensors file beside ``path``, fsync it, rename it over ``path``."""
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    fsync_path(tmp)
    tmp.replace(path)
    fsync_path(path.parent)


def save_centroids(path: Path, centroids: torch.Tensor) -> None:
    _save_durable(path, {"centroids": centroids})


def load_centroids(path: Path) -> torch.Tensor:
    return load_file(str(path))["centroids"]


def offsets_path(seg_dir: Path, field: str) -> Path:
    return seg_dir / f"{field}.ivf.safetensors"


def save_offsets(seg_dir: Path, field: str, offsets: torch.Tensor) -> None:
    _save_durable(offsets_path(seg_dir, field), {"offsets": offsets})


def load_offsets(seg_dir: Path, field: str) -> torch.Tensor:
    return load_file(str(offsets_path(seg_dir, field)))["offsets"]

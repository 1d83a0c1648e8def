"""IVF_FLAT: coarse centroids per collection, rows stored list by list in each segment.

Decisions (see README):
- Centroids are trained once **per collection** (k-means in ``kernels`` on the collection's
  device, on a sample of at most ``SAMPLE_PER_LIST * nlist`` rows) and stored as
  ``index/<index id>.safetensors`` (an id the engine assigns, never the index's name). One
  coarse quantisation per query batch then serves every segment.
- Each sealed segment is written in list order: all of its columns are permuted so that
  list ``l`` is the contiguous row range ``offsets[l]:offsets[l+1]``;
  ``<stem>.ivf.safetensors`` beside the shards holds ``offsets`` (nlist + 1,) int64. No
  second copy of the vectors exists, on disk or on the device.
- Segments sealed before the centroids existed, and the growing segment, are scanned
  exactly (flat); results are then a superset in quality, never worse.
- Rows have one order, so a collection has at most one IVF index.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load, save

import kernels

from ..errors import ParamError
from ..storage import checksum
from ..storage.files import write_atomic

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


def centroid_path(coll_dir: Path, index_id: int) -> Path:
    """The centroids of the index with engine-assigned id ``index_id``."""
    return coll_dir / "index" / f"{int(index_id):08d}.safetensors"


def _save_durable(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write a safetensors file beside ``path``, fsync it, rename it over ``path``; returns
    its checksum. A failed write leaves nothing behind."""
    path.parent.mkdir(exist_ok=True)
    data = save({k: v.contiguous() for k, v in tensors.items()})
    write_atomic(path, data)
    return checksum.digest(data)


def _load_checked(path: Path, expected: str | None) -> dict[str, torch.Tensor]:
    with open(path, "rb") as fh:
        data = fh.read()
    checksum.check(data, expected, path)
    return load(data)


def save_centroids(path: Path, centroids: torch.Tensor) -> str:
    return _save_durable(path, {"centroids": centroids})


def load_centroids(path: Path, expected: str | None) -> torch.Tensor:
    return _load_checked(path, expected)["centroids"]


def offsets_path(seg_dir: Path, stem: str) -> Path:
    """The list offsets beside the shard of the vector column with file stem ``stem``."""
    return seg_dir / f"{stem}.ivf.safetensors"


def save_offsets(path: Path, offsets: torch.Tensor) -> str:
    return _save_durable(path, {"offsets": offsets})


def load_offsets(path: Path, expected: str | None) -> torch.Tensor:
    return _load_checked(path, expected)["offsets"]

"""Index files: named tensors in safetensors, written atomically and checksummed.

Trained parts of an index are ``index/<index id>.safetensors`` in the collection folder
(an id the engine assigns, never the index's name); a segment's layout is
``<column stem>.<suffix>.safetensors`` beside that column's shard.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import load, save

from ..storage import checksum
from ..storage.files import write_atomic


def trained_path(coll_dir: Path, index_id: int) -> Path:
    return coll_dir / "index" / f"{int(index_id):08d}.safetensors"


def layout_path(seg_dir: Path, stem: str, suffix: str) -> Path:
    return seg_dir / f"{stem}.{suffix}.safetensors"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write a safetensors file beside ``path``, fsync it, rename it over ``path``; returns
    its checksum. A failed write leaves nothing behind."""
    path.parent.mkdir(exist_ok=True)
    data = save({k: v.contiguous() for k, v in tensors.items()})
    write_atomic(path, data)
    return checksum.digest(data)


def load_tensors(path: Path, expected: str | None) -> dict[str, torch.Tensor]:
    """The tensors of ``path``, checked against ``expected`` (CorruptFile if damaged)."""
    with open(path, "rb") as fh:
        data = fh.read()
    checksum.check(data, expected, path)
    return load(data)


def tensor_bytes(path: Path) -> int:
    """The bytes of the tensors in a safetensors file, read from its header alone."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return sum(int(m["data_offsets"][1]) - int(m["data_offsets"][0])
               for k, m in header.items() if k != "__metadata__")

"""Sealed segments and delete logs on disk.

A sealed segment is a folder ``segments/<id>/`` holding one safetensors shard per
fixed-width field (``<field>.safetensors``: tensor ``data``, plus ``valid`` for a nullable
field) and one Arrow IPC file per variable-width field (``<field>.arrow``, one column).
A folder is written under a temporary name, fsynced and renamed, so a segment either is
complete or does not exist; the manifest names the segments that count.

Deletes that were sealed are kept as ``deletes/<seq>.arrow`` (columns ``pk`` and ``seq``)
and applied at read time: a delete with sequence number ``s`` hides rows of every segment
sealed before ``s`` (rows deleted before a seal were dropped when it was written).
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..columns import Batch
from .files import fsync_dir


def shard_path(seg_dir: Path, name: str, fixed: bool) -> Path:
    return seg_dir / (f"{name}.safetensors" if fixed else f"{name}.arrow")


def write_segment(seg_dir: Path, batch: Batch) -> dict[str, int]:
    """Write ``batch`` as a segment folder; returns each column's on-disk payload bytes."""
    tmp = seg_dir.with_name(seg_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    sizes: dict[str, int] = {}
    for name, col in batch.cols.items():
        if isinstance(col, torch.Tensor):
            tensors = {"data": col.contiguous()}
            if name in batch.valid:
                tensors["valid"] = batch.valid[name].contiguous()
            path = shard_path(tmp, name, True)
            save_file(tensors, str(path))
            sizes[name] = sum(t.numel() * t.element_size() for t in tensors.values())
        else:
            path = shard_path(tmp, name, False)
            table = pa.table({name: col})
            with pa.OSFile(str(path), "wb") as sink:
                with pa.ipc.new_file(sink, table.schema) as w:
                    w.write_table(table)
            sizes[name] = col.nbytes
        _fsync(path)
    fsync_dir(tmp)
    os.replace(tmp, seg_dir)
    fsync_dir(seg_dir.parent)
    return sizes


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def shard_header(path: Path) -> tuple[int, dict]:
    """(offset of the data section, header) of a safetensors file."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return 8 + n, header


def read_tensor(seg_dir: Path, name: str, key: str = "data",
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Materialise one tensor of a shard in fresh (or the given) CPU memory with plain
    ``readinto`` calls: one kernel copy from the page cache, no mapping left behind."""
    path = shard_path(seg_dir, name, True)
    base, header = shard_header(path)
    meta = header[key]
    start, stop = meta["data_offsets"]
    dtype = _ST_DTYPES[meta["dtype"]]
    if out is None:
        out = torch.empty(meta["shape"], dtype=dtype)
    raw = out.view(-1).view(torch.uint8) if out.numel() else out.view(torch.uint8)
    view = memoryview(raw.numpy())
    with open(path, "rb", buffering=0) as fh:
        fh.seek(base + start)
        got = 0
        while got < stop - start:
            n = fh.readinto(view[got:])
            if not n:
                raise OSError(f"{path}: truncated shard (expected {stop - start} bytes)")
            got += n
    return out


def map_tensor(seg_dir: Path, name: str, key: str = "data") -> torch.Tensor:
    """A tensor backed by the memory-mapped shard (zero-copy; pages fault in on use)."""
    with safe_open(str(shard_path(seg_dir, name, True)), framework="pt") as f:
        return f.get_tensor(key)


def has_valid(seg_dir: Path, name: str) -> bool:
    return "valid" in shard_header(shard_path(seg_dir, name, True))[1]


def read_arrow(seg_dir: Path, name: str, memory_map: bool = False) -> pa.Array:
    path = str(shard_path(seg_dir, name, False))
    source: Any = pa.memory_map(path) if memory_map else pa.OSFile(path)
    with source:
        table = pa.ipc.open_file(source).read_all()
    col = table.column(0)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def write_deletes(path: Path, pks: Any, seqs: torch.Tensor) -> None:
    pk = pa.array(pks.numpy()) if isinstance(pks, torch.Tensor) else pks
    table = pa.table({"pk": pk, "seq": pa.array(seqs.numpy())})
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    _fsync(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_deletes(path: Path) -> tuple[pa.Array, torch.Tensor]:
    with pa.OSFile(str(path)) as src:
        table = pa.ipc.open_file(src).read_all()
    pk = table.column("pk").combine_chunks()
    seq = torch.from_numpy(table.column("seq").to_numpy().copy())
    return pk, seq

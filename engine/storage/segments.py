"""Sealed segments and delete logs on disk.

A sealed segment is a folder ``segments/<id>/`` holding one safetensors shard per
fixed-width field (``<field>.safetensors``: tensor ``data``, plus ``valid`` for a nullable
field) and one Arrow IPC file per variable-width field (``<field>.arrow``, one column).
A folder is written under a temporary name, fsynced and renamed, so a segment either is
complete or does not exist; the manifest names the segments that count.

Deletes that were sealed are kept as ``deletes/<seq>.arrow`` (columns ``pk``, ``seq`` and
``partition``, "" for all partitions) and applied at read time: a delete with sequence
number ``s`` hides rows of every segment of its partition sealed before ``s`` (rows deleted
before a seal were dropped when it was written).
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import torch
from safetensors.torch import save_file

from ..columns import Batch
from .files import fsync_dir, fsync_path


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
        fsync_path(path)
    fsync_dir(tmp)
    os.replace(tmp, seg_dir)
    fsync_dir(seg_dir.parent)
    return sizes


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def shard_header(path: Path) -> tuple[int, dict]:
    """(offset of the data section, header) of a safetensors file."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return 8 + n, header


@dataclass(frozen=True, slots=True)
class ShardTensor:
    """Where one tensor of a shard lies: file, byte range, dtype and shape."""

    path: Path
    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple


def shard_tensor(seg_dir: Path, name: str, key: str = "data") -> ShardTensor:
    path = shard_path(seg_dir, name, True)
    base, header = shard_header(path)
    meta = header[key]
    start, stop = meta["data_offsets"]
    return ShardTensor(path, base + start, stop - start, _ST_DTYPES[meta["dtype"]],
                       tuple(meta["shape"]))


def byte_view(t: torch.Tensor) -> torch.Tensor:
    """A flat uint8 view of a contiguous tensor's bytes."""
    return t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)


# Page-cache copies run at a few GB/s per thread: a CUDA host needs several in parallel to
# keep up with a PCIe 5 link (~50 GB/s), a 2-core box gets 2.
_READERS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                              thread_name_prefix="hotset-read")
_PIECE = 4 << 20  # a 32 MB staging chunk is read by 8 threads at once


def _pread_into(fd: int, offset: int, view: memoryview, path: Path) -> int:
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)  # releases the GIL
        if not n:
            raise OSError(f"{path} is cut short: expected {len(view)} bytes at offset {offset}")
        got += n
    return got


def read_range(fd: int, offset: int, dst: torch.Tensor, path: Path) -> None:
    """Fill the CPU uint8 tensor ``dst`` from file descriptor ``fd`` (of ``path``) at
    ``offset``: pieces read in parallel with ``preadv`` (one kernel copy each, from the page
    cache)."""
    view = memoryview(dst.numpy())
    if len(view) <= _PIECE:
        _pread_into(fd, offset, view, path)
        return
    jobs = [_READERS.submit(_pread_into, fd, offset + o, view[o:o + _PIECE], path)
            for o in range(0, len(view), _PIECE)]
    for j in jobs:
        j.result()


def read_tensor(seg_dir: Path, name: str, key: str = "data", chunk: int = 64 << 20,
                on_bytes: Callable[[int], None] | None = None) -> torch.Tensor:
    """Materialise one tensor of a shard in fresh CPU memory (no mapping left behind),
    ``chunk`` bytes at a time, reporting each chunk to ``on_bytes`` (which may raise to
    stop)."""
    st = shard_tensor(seg_dir, name, key)
    out = torch.empty(st.shape, dtype=st.dtype)
    raw = byte_view(out)
    fd = os.open(st.path, os.O_RDONLY)
    try:
        for off in range(0, st.nbytes, chunk):
            part = raw[off:off + chunk]
            read_range(fd, st.offset + off, part, st.path)
            if on_bytes is not None:
                on_bytes(part.numel())
    finally:
        os.close(fd)
    return out



def has_valid(seg_dir: Path, name: str) -> bool:
    return "valid" in shard_header(shard_path(seg_dir, name, True))[1]


def read_arrow(seg_dir: Path, name: str, memory_map: bool = False) -> pa.Array:
    path = str(shard_path(seg_dir, name, False))
    source: Any = pa.memory_map(path) if memory_map else pa.OSFile(path)
    with source:
        table = pa.ipc.open_file(source).read_all()
    col = table.column(0)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def write_deletes(path: Path, pks: Any, seqs: torch.Tensor, partitions: Any) -> None:
    """Sealed deletes: key, sequence number, and the partition they apply to ("" = all;
    ``partitions`` is a sequence of str, one per key)."""
    pk = pa.array(pks.numpy()) if isinstance(pks, torch.Tensor) else pks
    table = pa.table({"pk": pk, "seq": pa.array(seqs.numpy()),
                      "partition": pa.array(partitions, type=pa.string())})
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_deletes(path: Path) -> tuple[pa.Array, torch.Tensor, pa.Array]:
    with pa.OSFile(str(path)) as src:
        table = pa.ipc.open_file(src).read_all()
    pk = table.column("pk").combine_chunks()
    seq = torch.from_numpy(table.column("seq").to_numpy().copy())
    part = table.column("partition").combine_chunks()
    return pk, seq, part


def read_segment(seg_dir: Path, columns: dict[str, bool]) -> Batch:
    """Every column of a segment (``columns``: name -> fixed-width?) as a Batch."""
    batch = Batch(0)
    for name, fixed in columns.items():
        if fixed:
            batch.cols[name] = read_tensor(seg_dir, name)
            if has_valid(seg_dir, name):
                batch.valid[name] = read_tensor(seg_dir, name, "valid")
        else:
            batch.cols[name] = read_arrow(seg_dir, name)
        batch.num_rows = len(batch.cols[name])
    return batch

"""Sealed segments and delete logs on disk.

A sealed segment is a folder ``segments/<id>/`` holding one safetensors shard per
fixed-width field (``<stem>.safetensors``: tensor ``data``, plus ``valid`` for a nullable
field) and one Arrow IPC file per variable-width field (``<stem>.arrow``, one column). The
stem is the engine's name for the column (``f<field id>``, ``meta``), never a user's string.
A folder is written under a temporary name, fsynced and renamed, so a segment either is
complete or does not exist; the manifest names the segments that count, with each file's
checksums (``checksum.py``): a shard's header and each 4 MB block of each tensor, an Arrow
file whole. Readers given those checksums verify every byte they return.

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

import numpy as np
import pyarrow as pa
import torch
from safetensors.torch import save_file

from ..columns import Batch
from ..errors import StorageError
from . import checksum
from .files import fsync_dir, fsync_path, write_atomic


def shard_path(seg_dir: Path, stem: str, fixed: bool) -> Path:
    """The file of one column: ``stem`` is the engine's name for the column (``f101``,
    ``meta``), never a name a user gave."""
    return seg_dir / (f"{stem}.safetensors" if fixed else f"{stem}.arrow")


def write_segment(seg_dir: Path, batch: Batch,
                  stems: dict[str, str]) -> tuple[dict[str, int], dict[str, dict]]:
    """Write ``batch`` as a segment folder (``stems``: column name -> file stem); returns
    each column's on-disk payload bytes and each file's checksums (by file name)."""
    tmp = seg_dir.with_name(seg_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    sizes: dict[str, int] = {}
    sums: dict[str, dict] = {}
    for name, col in batch.cols.items():
        if isinstance(col, torch.Tensor):
            tensors = {"data": col.contiguous()}
            if name in batch.valid:
                tensors["valid"] = batch.valid[name].contiguous()
            path = shard_path(tmp, stems[name], True)
            save_file(tensors, str(path))
            sizes[name] = sum(t.numel() * t.element_size() for t in tensors.values())
            with open(path, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                head = struct.pack("<Q", n) + fh.read(n)
            sums[path.name] = {"header": checksum.digest(head),
                               **{k: checksum.blocks(byte_view(t).numpy())
                                  for k, t in tensors.items()}}
        else:
            path = shard_path(tmp, stems[name], False)
            sink = pa.BufferOutputStream()
            table = pa.table({name: col})
            with pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
            buf = sink.getvalue()
            with open(path, "wb") as fh:
                fh.write(buf)
            sizes[name] = col.nbytes
            sums[path.name] = {"file": checksum.digest(buf)}
        fsync_path(path)
    fsync_dir(tmp)
    os.replace(tmp, seg_dir)
    fsync_dir(seg_dir.parent)
    return sizes, sums


_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def shard_header(path: Path, sums: dict | None = None) -> tuple[int, dict]:
    """(offset of the data section, header) of a safetensors file, checked against its
    recorded checksum when ``sums`` (the file's checksums) is given."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise OSError(f"{path} is cut short: no header")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 << 20:
            raise checksum.CorruptFile(f"{path} is damaged: header length {n}")
        text = fh.read(n)
    if sums is not None:
        checksum.check(raw + text, sums.get("header"), path)
    return 8 + n, json.loads(text)


@dataclass(frozen=True, slots=True)
class ShardTensor:
    """Where one tensor of a shard lies: file, byte range, dtype and shape."""

    path: Path
    offset: int
    nbytes: int
    dtype: torch.dtype
    shape: tuple
    blocks: list | None = None  # checksum per checksum.BLOCK bytes; None: not verified


def shard_tensor(seg_dir: Path, stem: str, key: str = "data",
                 sums: dict | None = None) -> ShardTensor:
    path = shard_path(seg_dir, stem, True)
    base, header = shard_header(path, sums)
    meta = header[key]
    start, stop = meta["data_offsets"]
    return ShardTensor(path, base + start, stop - start, _ST_DTYPES[meta["dtype"]],
                       tuple(meta["shape"]), None if sums is None else sums.get(key))


def byte_view(t: torch.Tensor) -> torch.Tensor:
    """A flat uint8 view of a contiguous tensor's bytes."""
    return t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)


# Page-cache copies run at a few GB/s per thread: a CUDA host needs several in parallel to
# keep up with a PCIe 5 link (~50 GB/s), a 2-core box gets 2.
_READERS = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                              thread_name_prefix="hotset-read")
_PIECE = checksum.BLOCK  # a 32 MB staging chunk is read by 8 threads at once


def _pread_into(fd: int, offset: int, view: memoryview, path: Path,
                expected: str | None) -> int:
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)  # releases the GIL
        if not n:
            raise OSError(f"{path} is cut short: expected {len(view)} bytes at offset {offset}")
        got += n
    checksum.check(view, expected, path)
    return got


def read_range(fd: int, offset: int, dst: torch.Tensor, path: Path,
               blocks: list | None = None, first: int = 0) -> None:
    """Fill the CPU uint8 tensor ``dst`` from file descriptor ``fd`` (of ``path``) at
    ``offset``: pieces read in parallel with ``preadv`` (one kernel copy each, from the page
    cache). With ``blocks`` (the tensor's block checksums; ``dst`` starts at block
    ``first``) each piece is verified by the thread that read it."""
    view = memoryview(dst.numpy())
    pieces = range(0, len(view), _PIECE)
    if blocks is not None and first + len(pieces) > len(blocks):
        raise checksum.CorruptFile(f"{path} is damaged: longer than the data written")

    def expected(i: int) -> str | None:
        return None if blocks is None else blocks[first + i]

    if len(view) <= _PIECE:
        _pread_into(fd, offset, view, path, expected(0) if len(view) else None)
        return
    jobs = [_READERS.submit(_pread_into, fd, offset + o, view[o:o + _PIECE], path,
                            expected(i)) for i, o in enumerate(pieces)]
    for j in jobs:
        j.result()


def read_tensor(seg_dir: Path, stem: str, key: str = "data", chunk: int = 64 << 20,
                on_bytes: Callable[[int], None] | None = None,
                sums: dict | None = None) -> torch.Tensor:
    """Materialise one tensor of a shard in fresh CPU memory (no mapping left behind),
    ``chunk`` bytes at a time, reporting each chunk to ``on_bytes`` (which may raise to
    stop); verified against ``sums`` (the file's checksums) when given."""
    assert chunk % _PIECE == 0, "chunks must hold whole checksum blocks"
    st = shard_tensor(seg_dir, stem, key, sums)
    out = torch.empty(st.shape, dtype=st.dtype)
    raw = byte_view(out)
    if raw.numel() != st.nbytes:
        raise checksum.CorruptFile(f"{st.path} is damaged: its header does not match its data")
    fd = os.open(st.path, os.O_RDONLY)
    try:
        for off in range(0, st.nbytes, chunk):
            part = raw[off:off + chunk]
            read_range(fd, st.offset + off, part, st.path, st.blocks, off // _PIECE)
            if on_bytes is not None:
                on_bytes(part.numel())
    finally:
        os.close(fd)
    return out



class ShardRows:
    """The rows of a (n, ...) shard tensor, left on disk and read on demand: ``rows[idx]``
    (an int64 tensor of row numbers, on any device) returns those rows as a CPU tensor.
    With checksums, each 4 MB block a read touches is verified whole the first time
    (``verified`` remembers it), so what it returns is checked as a load's reads are.
    A quantised index's rows, when a load leaves them out of memory (``index/quant.py``)."""

    def __init__(self, st: ShardTensor, collection: str, what: str) -> None:
        self.st, self.collection, self.what = st, collection, what
        self.shape, self.dtype = st.shape, st.dtype
        self.device = torch.device("cpu")
        self.row_bytes = st.nbytes // st.shape[0] if st.shape and st.shape[0] else 0
        self.verified: set[int] = set()

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(idx).reshape(-1).cpu().long()
        out = torch.empty((idx.numel(), *self.shape[1:]), dtype=self.dtype)
        if not idx.numel():
            return out
        st, rb = self.st, self.row_bytes
        try:
            if st.blocks is not None:
                touched = torch.cat([idx * rb // _PIECE, ((idx + 1) * rb - 1) // _PIECE])
                todo = [b for b in torch.unique(touched).tolist() if b not in self.verified]
                if todo:
                    self._verify(todo)
            mm = np.memmap(st.path, dtype=np.uint8, mode="r", offset=st.offset,
                           shape=(self.shape[0], rb))
            rows = np.ascontiguousarray(mm[idx.numpy()])
            del mm
        except (OSError, ValueError) as e:  # CorruptFile is a ValueError
            raise StorageError(self.collection, self.what, st.path, e,
                               "The read was refused.") from e
        byte_view(out).copy_(torch.from_numpy(rows).reshape(-1))
        return out

    def _verify(self, blocks: list[int]) -> None:
        st = self.st
        fd = os.open(st.path, os.O_RDONLY)
        try:
            for b in blocks:
                size = min(_PIECE, st.nbytes - b * _PIECE)
                buf = torch.empty(size, dtype=torch.uint8)
                read_range(fd, st.offset + b * _PIECE, buf, st.path, st.blocks, b)
                self.verified.add(b)
        finally:
            os.close(fd)


def has_valid(seg_dir: Path, stem: str) -> bool:
    return "valid" in shard_header(shard_path(seg_dir, stem, True))[1]


def read_arrow(seg_dir: Path, stem: str, sums: dict | None = None) -> pa.Array:
    """One Arrow column file, verified against ``sums`` (the file's checksums) when given."""
    path = shard_path(seg_dir, stem, False)
    with open(path, "rb") as fh:
        raw = fh.read()
    if sums is not None:
        checksum.check(raw, sums.get("file"), path)
    table = pa.ipc.open_file(pa.BufferReader(raw)).read_all()
    col = table.column(0)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def write_deletes(path: Path, pks: Any, seqs: torch.Tensor, partitions: Any) -> str:
    """Sealed deletes: key, sequence number, and the partition they apply to ("" = all;
    ``partitions`` is a sequence of str, one per key); returns the file's checksum."""
    pk = pa.array(pks.numpy()) if isinstance(pks, torch.Tensor) else pks
    table = pa.table({"pk": pk, "seq": pa.array(seqs.numpy()),
                      "partition": pa.array(partitions, type=pa.string())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    buf = sink.getvalue()
    write_atomic(path, buf)
    return checksum.digest(buf)


def read_deletes(path: Path, expected: str | None) -> tuple[pa.Array, torch.Tensor, pa.Array]:
    with open(path, "rb") as fh:
        raw = fh.read()
    checksum.check(raw, expected, path)
    table = pa.ipc.open_file(pa.BufferReader(raw)).read_all()
    pk = table.column("pk").combine_chunks()
    seq = torch.from_numpy(table.column("seq").to_numpy().copy())
    part = table.column("partition").combine_chunks()
    return pk, seq, part


def read_segment(seg_dir: Path, columns: dict[str, tuple[str, bool]],
                 sums: dict[str, dict]) -> Batch:
    """Every column of a segment (``columns``: name -> (file stem, fixed-width?)) as a
    Batch, verified against ``sums`` (checksums by file name)."""
    batch = Batch(0)
    for name, (stem, fixed) in columns.items():
        file_sums = sums.get(shard_path(seg_dir, stem, fixed).name)
        if fixed:
            batch.cols[name] = read_tensor(seg_dir, stem, sums=file_sums)
            if has_valid(seg_dir, stem):
                batch.valid[name] = read_tensor(seg_dir, stem, "valid", sums=file_sums)
        else:
            batch.cols[name] = read_arrow(seg_dir, stem, file_sums)
        batch.num_rows = len(batch.cols[name])
    return batch

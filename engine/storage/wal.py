"""Write-ahead log: one file per collection, records appended and fsynced before a write
is acknowledged.

Record = header ``<4s Q B I I`` (magic ``HWAL``, sequence number, kind, payload length,
crc32 of the payload) + payload (partition name, then a serialised column batch). Replay
stops at the first torn or corrupt record and cuts the file there: such a record was
never acknowledged, because the fsync that acknowledges it had not returned. That holds
only for the tail: a damaged record followed by an intact one is damage to acknowledged
writes (the disk, not a crash), and replay refuses it with the file left whole.
"""
from __future__ import annotations

import enum
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..columns import Batch, batch_from_bytes, batch_to_bytes
from ..errors import WriteFailed

_HEADER = struct.Struct("<4sQBII")
_MAGIC = b"HWAL"


class Kind(enum.IntEnum):
    INSERT = 1
    DELETE = 2  # batch with one column "pk"
    UPSERT = 3  # delete the batch's keys, then insert the batch


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: Kind
    partition: str
    batch: Batch


class WriteAheadLog:
    """Appends go straight to the file descriptor (no Python buffer that could hold half a
    record). An append that fails (disk full, I/O error) is cut back off the file before the
    error is raised, so the next record follows the last good one: otherwise replay would
    find damage before intact, acknowledged records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._broken: OSError | None = None

    def append(self, seq: int, kind: Kind, partition: str, batch: Batch) -> None:
        if self._broken is not None:
            raise WriteFailed(str(self.path), self._broken, "It could not be cut back after "
                              "an earlier failed write: close the client and open the data "
                              "directory again")
        name = partition.encode()
        payload = struct.pack("<H", len(name)) + name + batch_to_bytes(batch)
        header = _HEADER.pack(_MAGIC, seq, int(kind), len(payload), zlib.crc32(payload))
        record = memoryview(header + payload)
        try:
            done = 0
            while done < len(record):
                done += os.write(self._fd, record[done:])
            os.fsync(self._fd)
        except OSError as e:
            self._cut_back()
            raise WriteFailed(str(self.path), e, "Nothing was written: free disk space or "
                              "check the disk, then retry") from e
        self._size += len(record)

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError as e:
            self._broken = e

    def reset(self) -> None:
        """Empty the log (after its records were sealed into segments)."""
        os.ftruncate(self._fd, 0)
        self._size = 0  # before the fsync: a later cut-back must not grow the file again
        os.fsync(self._fd)

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def replay(path: Path) -> Iterator[Record]:
    """Yield the log's intact records in order and cut off a torn tail."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        data = fh.read()
    good = 0
    for good, rec in records(data, path):
        yield rec
    if good != len(data):
        with open(path, "rb+") as fh:
            fh.truncate(good)
            os.fsync(fh.fileno())


def records(data: bytes, path: Path) -> Iterator[tuple[int, Record]]:
    """(end offset, record) of each intact record of a log's bytes, stopping at a torn tail;
    OSError if a damaged record has an intact one after it. Reads only."""
    off = 0
    while off + _HEADER.size <= len(data):
        magic, seq, kind, length, crc = _HEADER.unpack_from(data, off)
        start = off + _HEADER.size
        payload = data[start:start + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            later = _intact_record_after(data, off + 1)
            if later is not None:
                raise OSError(f"{path}: the record at byte {off} is damaged and an intact "
                              f"record follows at byte {later}, so acknowledged writes lie "
                              "past the damage; the log was left as it is")
            return
        (name_len,) = struct.unpack_from("<H", payload)
        partition = payload[2:2 + name_len].decode()
        off = start + length
        yield off, Record(seq, Kind(kind), partition, batch_from_bytes(payload[2 + name_len:]))


def _intact_record_after(data: bytes, pos: int) -> int | None:
    """Offset of the first intact record (magic, length and crc all right) at or after
    ``pos``, or None."""
    at = data.find(_MAGIC, pos)
    while at != -1 and at + _HEADER.size <= len(data):
        _, _, _, length, crc = _HEADER.unpack_from(data, at)
        start = at + _HEADER.size
        payload = data[start:start + length]
        if len(payload) == length and zlib.crc32(payload) == crc:
            return at
        at = data.find(_MAGIC, at + 1)
    return None

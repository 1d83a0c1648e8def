"""Host-side bookkeeping of segments, loaded or not.

Every segment keeps its primary keys and a deleted-row mask on the host, so deletes by key
work in any load state (as in Milvus) without reading a field the user did not load. A
growing segment also holds its rows (the WAL-backed write buffer); a sealed segment's rows
live on disk until a load makes them resident.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import torch

from .columns import Batch, concat
from .index.files import load_tensors, tensor_bytes


def match_keys(pk: Any, keys: Any) -> torch.Tensor:
    """(n,) bool: which of the key column ``pk`` are in ``keys`` (same kind of column)."""
    if isinstance(pk, torch.Tensor):
        return torch.isin(pk, keys.to(pk.device))
    hit = pc.is_in(pk, value_set=keys).to_numpy(zero_copy_only=False)
    return torch.from_numpy(hit.copy())


@dataclass
class SealedSegment:
    id: int
    partition: str
    sealed_seq: int
    pk: Any
    deleted: torch.Tensor
    layout_field: str | None = None   # rows are stored in this vector field's index order
    layout: dict[str, torch.Tensor] | None = None  # that order's tensors (IVF: list offsets)
    # A large layout (an HNSW graph) stays on disk until a load reads it: (path, checksum)
    layout_file: tuple[Path, str | None] | None = None

    def layout_tensors(self) -> dict[str, torch.Tensor]:
        """The layout's tensors: held, or read from their file for this load."""
        if self.layout is not None:
            return self.layout
        return load_tensors(*self.layout_file)

    def layout_nbytes(self) -> int:
        if self.layout is not None:
            return sum(t.numel() * t.element_size() for t in self.layout.values())
        return tensor_bytes(self.layout_file[0])

    @property
    def num_rows(self) -> int:
        return len(self.pk)

    @property
    def live_rows(self) -> int:
        return self.num_rows - int(self.deleted.sum())


class GrowingSegment:
    """The rows written since the last seal, in arrival batches. Appends cost the batch,
    not the segment: the deleted mask grows by doubling and the byte count is kept as a
    running total, so ingest in small batches stays linear."""

    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.batches: list[Batch] = []
        self._deleted = torch.zeros(0, dtype=torch.bool)
        self._rows = 0
        self._nbytes = 0
        self._cache: Batch | None = None

    @property
    def deleted(self) -> torch.Tensor:
        """(num_rows,) bool, a view: ``seg.deleted |= hit`` marks rows in place."""
        return self._deleted[:self._rows]

    @deleted.setter
    def deleted(self, value: torch.Tensor) -> None:
        if value.data_ptr() != self._deleted.data_ptr():  # ``|=`` already wrote in place
            self._deleted[:self._rows] = value

    def append(self, batch: Batch) -> None:
        need = self._rows + batch.num_rows
        if need > self._deleted.numel():
            grown = torch.zeros(max(need, 2 * self._deleted.numel(), 1024), dtype=torch.bool)
            grown[:self._rows] = self.deleted
            self._deleted = grown
        self.batches.append(batch)
        self._rows = need
        self._nbytes += batch.nbytes()
        self._cache = None

    def data(self) -> Batch:
        if self._cache is None:
            self._cache = concat(self.batches)
            self.batches = [self._cache]
        return self._cache

    @property
    def num_rows(self) -> int:
        return self._rows

    @property
    def live_rows(self) -> int:
        return self._rows - int(self.deleted.sum())

    def nbytes(self) -> int:
        return self._nbytes

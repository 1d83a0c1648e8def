"""Host-side bookkeeping of segments, loaded or not.

Every segment keeps its primary keys and a deleted-row mask on the host, so deletes by key
work in any load state (as in Milvus) without reading a field the user did not load. A
growing segment also holds its rows (the WAL-backed write buffer); a sealed segment's rows
live on disk until a load makes them resident.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
import torch

from .columns import Batch, concat


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
    ivf_field: str | None = None           # rows are in this IVF field's list order
    ivf_offsets: torch.Tensor | None = None  # (nlist + 1,) int64

    @property
    def num_rows(self) -> int:
        return len(self.pk)

    @property
    def live_rows(self) -> int:
        return self.num_rows - int(self.deleted.sum())


@dataclass
class GrowingSegment:
    partition: str
    batches: list[Batch] = field(default_factory=list)
    deleted: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.bool))
    _cache: Batch | None = None

    def append(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.deleted = torch.cat([self.deleted, torch.zeros(batch.num_rows, dtype=torch.bool)])
        self._cache = None

    def data(self) -> Batch:
        if self._cache is None:
            self._cache = concat(self.batches)
            self.batches = [self._cache]
        return self._cache

    @property
    def num_rows(self) -> int:
        return int(self.deleted.numel())

    @property
    def live_rows(self) -> int:
        return self.num_rows - int(self.deleted.sum())

    def nbytes(self) -> int:
        return sum(b.nbytes() for b in self.batches)

"""Typed change records: what a durable write, flush or training changed on the host.

Storage (``Collection``) returns them after its durable step; residency applies them to
the resident copy, if there is one. Storage never calls up into residency.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .columns import Batch
from .segment import GrowingSegment, SealedSegment


@dataclass(frozen=True, slots=True)
class Inserted:
    """Rows appended to a partition's growing segment."""

    partition: str
    batch: Batch


@dataclass(frozen=True, slots=True)
class Deleted:
    """Rows of one segment newly marked deleted (``hit``: its (num_rows,) bool mask)."""

    segment: SealedSegment | GrowingSegment
    hit: torch.Tensor


@dataclass(frozen=True, slots=True)
class Sealed:
    """A flush turned the growing rows into new sealed segments. For each new segment,
    ``live`` gives the growing-segment row each of its rows came from (in the order the
    segment stores them); every growing segment is now empty."""

    segments: tuple[tuple[SealedSegment, torch.Tensor], ...]


@dataclass(frozen=True, slots=True)
class Trained:
    """An index of ``field`` was trained: its trained parts (host tensors)."""

    field: str
    parts: dict[str, torch.Tensor]


@dataclass(frozen=True, slots=True)
class Rewritten:
    """Sealed segments were replaced by others holding the same live rows (a compaction):
    a resident copy is reloaded from disk."""

    removed: tuple[int, ...]
    added: tuple[int, ...]


Change = Inserted | Deleted | Sealed | Trained | Rewritten

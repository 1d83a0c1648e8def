"""Placement: which device each sealed segment of a load goes to.

A step of every load plan (``Loader.plan``). Today's policy has one device to choose, so
every segment goes there; a policy for several devices (balance bytes, keep a partition
together) replaces ``place`` without touching the loader or the search, which read each
resident segment's device from the segment.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .segment import SealedSegment


def place(segments: Sequence[SealedSegment], devices: Sequence[torch.device]
          ) -> dict[int, torch.device]:
    """Segment id -> device, for ``segments`` over ``devices`` (the first, today)."""
    return {seg.id: devices[0] for seg in segments}

"""Argument types shared by the benchmarks' command lines."""
from __future__ import annotations


def int_list(text: str) -> list[int]:
    """``"8,32,128"`` -> ``[8, 32, 128]`` (for ``--nprobe``, ``--batch``)."""
    return [int(x) for x in text.split(",")]

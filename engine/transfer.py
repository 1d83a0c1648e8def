"""Host -> device copies of shard tensors.

CPU device: the shard is read (``readinto``) straight into fresh, allocator-registered
memory. CUDA device: the file is read chunk by chunk into two pinned staging buffers and
each chunk is copied to the device on a side stream, so reading chunk i+1 overlaps the DMA
of chunk i; the caller's progress callback sees every chunk, and a cancel flag is checked
between chunks.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from .storage.checksum import BLOCK, CorruptFile
from .storage.segments import ShardTensor, byte_view, read_range, read_tensor, shard_tensor

CHUNK_BYTES = 32 << 20  # whole checksum blocks


class Cancelled(Exception):
    pass


class HostToDevice:
    def __init__(self, device: torch.device, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.device = device
        self.chunk = chunk_bytes
        self._staging: list[torch.Tensor] = []
        self._stream = None

    def _buffers(self) -> list[torch.Tensor]:
        if not self._staging:
            self._staging = [torch.empty(self.chunk, dtype=torch.uint8).pin_memory()
                             for _ in range(2)]
            self._stream = torch.cuda.Stream(self.device)
        return self._staging

    def load(self, seg_dir, stem: str, key: str = "data",
             on_bytes: Callable[[int], None] | None = None,
             cancelled: Callable[[], bool] = lambda: False,
             sums: dict | None = None) -> torch.Tensor:
        """One tensor of the shard ``stem`` of ``seg_dir`` on the device, verified against
        ``sums`` (the file's checksums) when given."""
        if self.device.type == "cpu":
            def report(n: int) -> None:
                if cancelled():
                    raise Cancelled()
                if on_bytes is not None:
                    on_bytes(n)

            return read_tensor(seg_dir, stem, key, self.chunk, report, sums)
        return self._load_cuda(shard_tensor(seg_dir, stem, key, sums), on_bytes, cancelled)

    def _load_cuda(self, st: ShardTensor, on_bytes, cancelled) -> torch.Tensor:
        out = torch.empty(st.shape, dtype=st.dtype, device=self.device)
        dst = byte_view(out)
        if dst.numel() != st.nbytes:
            raise CorruptFile(f"{st.path} is damaged: its header does not match its data")
        bufs = self._buffers()
        stream = self._stream
        done: list[torch.cuda.Event | None] = [None, None]
        stream.wait_stream(torch.cuda.current_stream(self.device))  # `out` exists first
        fd = os.open(st.path, os.O_RDONLY)
        try:
            for i, off in enumerate(range(0, st.nbytes, self.chunk)):
                if cancelled():
                    raise Cancelled()
                b = i % 2
                if done[b] is not None:
                    done[b].synchronize()  # the DMA that last used this buffer has finished
                n = min(self.chunk, st.nbytes - off)
                read_range(fd, st.offset + off, bufs[b][:n], st.path, st.blocks,
                           off // BLOCK)
                with torch.cuda.stream(stream):
                    dst[off:off + n].copy_(bufs[b][:n], non_blocking=True)
                    ev = torch.cuda.Event()
                    ev.record(stream)
                done[b] = ev
                if on_bytes is not None:
                    on_bytes(n)
        finally:
            os.close(fd)
            # Also on a failed read or a cancel: no copy may still be writing into `out` or
            # reading a staging buffer once the caller frees or reuses them.
            stream.synchronize()
        return out

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A small host tensor (masks) to the device."""
        if self.device.type == "cpu":
            return t
        return t.to(self.device)

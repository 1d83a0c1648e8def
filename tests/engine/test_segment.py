"""engine/segment.py: a growing segment's appends cost the batch, not the segment."""
import torch

from engine.columns import Batch
from engine.segment import GrowingSegment


def test_small_appends_do_not_copy_the_whole_segment():
    g = GrowingSegment("_default")
    buffers = set()
    for i in range(5000):
        g.append(Batch(1, {"pk": torch.tensor([i])}))
        buffers.add(g._deleted.data_ptr())
    assert len(buffers) <= 4  # capacity doubles from 1024: 1024, 2048, 4096, 8192
    assert g.num_rows == 5000 and g.nbytes() == 5000 * 8
    g.deleted |= torch.arange(5000) % 2 == 0
    assert g.live_rows == 2500 and g.deleted.shape == (5000,)
    g.append(Batch(2, {"pk": torch.tensor([7, 8])}))
    assert g.deleted[-2:].tolist() == [False, False] and g.live_rows == 2502
    assert g.data().cols["pk"].shape == (5002,)

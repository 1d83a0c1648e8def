"""The list-grouped Triton IVF scan equals its plain-torch twin ``ref.ivf_search``
(tie-tolerant): masks, range bounds, k up to the maximum, empty lists, lists longer than a
block, tiles cut in several, queries probing one list many times; on the CPU through the
Triton interpreter and, marked gpu, on CUDA."""
import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

from kernels import ref  # noqa: E402
from kernels import triton_grouped  # noqa: E402

from .test_triton_ivf import _assert_rows_have_distances, _devices, _layout  # noqa: E402


def _check(d1, i1, d2, i2, mask, q, x, metric):
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    ok = i1 >= 0
    assert torch.equal(ok, i2 >= 0)
    if mask is not None:
        assert bool(mask[i1[ok]].all())
    _assert_rows_have_distances(q, x, i1, d1, metric)


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, k, masked, bounds", [
    ("L2", 10, True, None), ("IP", 16, False, (-50.0, 0.0)), ("COSINE", 2, True, None),
    pytest.param("IP", 64, True, None, marks=pytest.mark.slow)])  # k = MAX_K: 40 s here
def test_grouped_equals_ref(device, metric, k, masked, bounds):
    x, offsets, cent, _ = _layout(300, 20, 5, 2, metric)  # lists longer than a block
    g = torch.Generator().manual_seed(4)
    q = torch.randn(30, 20, generator=g)                   # tiles of 16: lists cut in several
    probes = ref.coarse_probe(q, cent, 3, metric)
    probes[::7, 1] = probes[::7, 0]                        # a list probed twice by a query
    assert int(torch.bincount(probes.reshape(-1)).max()) > 16
    mask = (torch.arange(300) % 4 != 0) if masked else None
    lo, hi = bounds if bounds else (None, None)
    d2, i2 = ref.ivf_search(q, x, offsets, probes, k, metric, mask, lo, hi)
    dev = [t.to(device) for t in (q, x, offsets, probes)]
    d1, i1 = triton_grouped.ivf_search(*dev, k, metric,
                                       None if mask is None else mask.to(device), lo, hi,
                                       bq=16, br=32, bd=16, precision="ieee")
    _check(d1.cpu(), i1.cpu(), d2, i2, mask, q, x, metric)


@pytest.mark.parametrize("device", _devices())
def test_grouped_with_empty_lists_and_half_rows(device):
    x, offsets, cent, _ = _layout(200, 16, 4, 5, "L2")
    offsets = torch.cat([offsets[:2], offsets[1:2], offsets[2:]])   # list 1 is empty
    cent = torch.cat([cent[:1], cent[:1] + 100.0, cent[1:]])
    q = torch.randn(20, 16, generator=torch.Generator().manual_seed(6))
    probes = torch.tensor([[0, 1, 2]] * 20)
    half = x.half()
    d2, i2 = ref.ivf_search(q, half, offsets, probes, 8, "L2")
    d1, i1 = triton_grouped.ivf_search(q.to(device), half.to(device), offsets.to(device),
                                       probes.to(device), 8, "L2", bq=16, br=32, bd=16)
    # float16 products: rows agree where the distances are apart
    torch.testing.assert_close(d1.cpu(), d2, rtol=2e-3, atol=2e-2)
    assert not bool((i1.cpu() >= offsets[1]).logical_and(i1.cpu() < offsets[2]).any())


def test_tiles_cover_every_pair_once():
    probes = torch.tensor([[0, 1], [0, 2], [0, 1], [2, 2]])
    tile_list, start, count, pair_q, pair_id = triton_grouped.tiles(probes, 2)
    seen = []
    for lst, s, c in zip(tile_list.tolist(), start.tolist(), count.tolist()):
        assert 1 <= c <= 2
        for p in range(s, s + c):
            q, slot = divmod(int(pair_id[p]), 2)
            assert int(pair_q[p]) == q and int(probes[q, slot]) == lst
            seen.append((q, lst))
    assert sorted(seen) == sorted({(q, int(l)) for q in range(4) for l in probes[q]})

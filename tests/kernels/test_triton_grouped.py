"""The list-grouped Triton IVF scan equals its plain-torch twin ``ref.ivf_search``
(tie-tolerant): masks, range bounds, k up to the maximum, empty lists, lists longer than a
block, tiles cut in several, queries probing one list many times; on the CPU through the
Triton interpreter and, marked gpu, on CUDA."""
import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

from kernels import ref  # noqa: E402
from kernels import triton_grouped  # noqa: E402

from .test_triton_quant import _check as quant_check  # noqa: E402
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
    ("L2", 10, True, None), ("IP", 16, False, (-50.0, 0.0)), ("COSINE", 2, True, None)])
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
@pytest.mark.parametrize("metric", ["IP", "L2"])
def test_grouped_at_the_largest_k(device, metric):
    """k = MAX_K over lists shorter than k (fewer candidates than asked: padded)."""
    x, offsets, cent, _ = _layout(140, 16, 4, 3, metric)
    q = torch.randn(10, 16, generator=torch.Generator().manual_seed(12))
    probes = ref.coarse_probe(q, cent, 2, metric)
    mask = torch.arange(140) % 6 != 0
    k = triton_grouped.MAX_K
    d2, i2 = ref.ivf_search(q, x, offsets, probes, k, metric, mask)
    dev = [t.to(device) for t in (q, x, offsets, probes)]
    d1, i1 = triton_grouped.ivf_search(*dev, k, metric, mask.to(device), bq=16, br=64,
                                       bd=16, precision="ieee")
    assert bool((i2 < 0).any())                            # some queries run out of rows
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


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, k, masked, bounds", [
    ("L2", 10, True, None), ("IP", 5, False, (-50.0, 0.0)), ("COSINE", 20, True, None)])
def test_grouped_flat_equals_ref(device, metric, k, masked, bounds):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(230, 20, generator=g)        # 3 lists of 77 rows: the last one short
    q = torch.randn(21, 20, generator=g)         # tiles of 16: a full one and a part
    mask = (torch.arange(230) % 3 != 0) if masked else None
    lo, hi = bounds if bounds else (None, None)
    d2, i2 = ref.flat_search(q, x, k, metric, mask, lo=lo, hi=hi)
    d1, i1 = triton_grouped.flat_search(q.to(device), x.to(device), k, metric,
                                        None if mask is None else mask.to(device), lo, hi,
                                        lists=3, bq=16, br=32, bd=16, precision="ieee")
    _check(d1.cpu(), i1.cpu(), d2, i2, mask, q, x, metric)


def test_flat_tiles_cover_every_query_and_list_once():
    tile_list, start, count, pair_q, pair_id = triton_grouped.flat_tiles(5, 3, 2,
                                                                         torch.device("cpu"))
    seen = []
    for lst, s, c in zip(tile_list.tolist(), start.tolist(), count.tolist()):
        for p in range(s, s + c):
            q, slot = divmod(int(pair_id[p]), 3)
            assert int(pair_q[p]) == q and slot == lst
            seen.append((q, lst))
    assert sorted(seen) == [(q, lst) for q in range(5) for lst in range(3)]


def _coded_layout(metric):
    from kernels import quant

    x, offsets, cent, _ = _layout(400, 16, 5, 9, metric)
    x = quant.unit_rows(x, metric)
    lab = torch.repeat_interleave(torch.arange(5), offsets[1:] - offsets[:-1])
    q = torch.randn(24, 16, generator=torch.Generator().manual_seed(10))
    probes = ref.coarse_probe(q, cent, 3, metric)
    probes[::5, 2] = probes[::5, 0]                        # a list probed twice by a query
    return x, lab, offsets, cent, q, probes


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, k", [("L2", 10), ("IP", 3), ("COSINE", 16)])
def test_grouped_sq8_equals_ref(device, metric, k):
    from kernels import quant

    x, _, offsets, cent, q, probes = _coded_layout(metric)
    t = quant.sq8_train(x)
    codes = quant.sq8_encode(x, t["vmin"], t["vdiff"])
    mask = (torch.arange(400) % 4) != 0
    d2, i2 = ref.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, k, metric,
                                mask, lo=-40.0, hi=40.0)
    args = [a.to(device) for a in (q, codes, t["scale"], t["base"], offsets, probes)]
    d1, i1 = triton_grouped.ivf_sq8_search(*args, k, metric, mask.to(device), -40.0, 40.0,
                                           bq=16, br=32, bd=16, precision="ieee")
    quant_check(d1.cpu(), i1.cpu(), d2, i2, mask)


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, m", [("L2", 4), ("IP", 2), ("COSINE", 8)])
def test_grouped_pq_equals_ref(device, metric, m):
    from kernels import quant

    x, lab, offsets, cent, q, probes = _coded_layout(metric)
    res = quant.residuals(x, cent, lab)
    cb = quant.pq_train(res, m)
    codes = quant.pq_encode(res, cb)
    mask = (torch.arange(400) % 5) != 0
    d2, i2 = ref.ivf_pq_search(q, codes, cent, cb, offsets, probes, 10, metric, mask)
    args = [a.to(device) for a in (q, codes, cent, cb, offsets, probes)]
    d1, i1 = triton_grouped.ivf_pq_search(*args, 10, metric, mask.to(device), bq=16, br=32,
                                          bd=16, precision="ieee")
    quant_check(d1.cpu(), i1.cpu(), d2, i2, mask)

"""The Triton IVF_SQ8 and IVF_PQ scans equal their plain-torch twins (tie-tolerant), on
the CPU through the Triton interpreter and, marked gpu, on CUDA."""
import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

from kernels import quant, ref  # noqa: E402
from kernels import triton_quant  # noqa: E402

from .test_triton_ivf import _devices  # noqa: E402


def _coded(n, d, nlist, metric, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = quant.unit_rows(torch.randn(n, d, generator=g), metric)
    cent = ref.kmeans(x, nlist, metric, iters=3)
    lab = ref.assign(x, cent, metric)
    order = torch.argsort(lab, stable=True)
    offsets = torch.zeros(nlist + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=nlist), 0)
    return x[order].contiguous(), lab[order], offsets, cent, torch.randn(5, d, generator=g)


def _check(d1, i1, d2, i2, mask):
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-3)
    ok = i1 >= 0
    assert torch.equal(ok, i2 >= 0)
    assert bool(mask[i1[ok]].all())
    # tie-tolerant: rows may differ only where distances tie
    same = (i1 == i2) | torch.isclose(d1, d2, rtol=1e-4, atol=1e-3)
    assert bool(same.all())


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, k", [("L2", 10), ("IP", 1), ("COSINE", 10)])
def test_triton_sq8_equals_ref(device, metric, k):
    x, _, offsets, cent, q = _coded(300, 20, 6, metric)
    t = quant.sq8_train(x)
    codes = quant.sq8_encode(x, t["vmin"], t["vdiff"])
    probes = ref.coarse_probe(q, cent, 3, metric)
    mask = (torch.arange(300) % 4) != 0
    args = [a.to(device) for a in (q, codes, t["scale"], t["base"], offsets, probes)]
    d1, i1 = triton_quant.ivf_sq8_search(*args, k, metric, mask.to(device), block=32,
                                         block_d=16)
    d2, i2 = ref.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, k, metric,
                                mask)
    _check(d1.cpu(), i1.cpu(), d2, i2, mask)


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, m", [("L2", 4), ("IP", 3), ("COSINE", 4)])
def test_triton_pq_equals_ref(device, metric, m):  # m = 3: padded to 4 subspaces
    x, lab, offsets, cent, q = _coded(600, 12, 6, metric)
    res = quant.residuals(x, cent, lab)
    cb = quant.pq_train(res, m)
    codes = quant.pq_encode(res, cb)
    probes = ref.coarse_probe(q, cent, 3, metric)
    mask = (torch.arange(600) % 5) != 0
    args = [a.to(device) for a in (q, codes, cent, cb, offsets, probes)]
    d1, i1 = triton_quant.ivf_pq_search(*args, 10, metric, mask.to(device), lo=-50.0,
                                        hi=50.0, block=32)
    d2, i2 = ref.ivf_pq_search(q, codes, cent, cb, offsets, probes, 10, metric, mask,
                               lo=-50.0, hi=50.0)
    _check(d1.cpu(), i1.cpu(), d2, i2, mask)

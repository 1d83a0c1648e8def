"""The Triton IVF scan equals its plain-torch twin (tie-tolerant), on the CPU through the
Triton interpreter (tests/conftest.py sets TRITON_INTERPRET=1 where there is no CUDA)
and, marked gpu, on CUDA."""
import os

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")

from kernels import ref  # noqa: E402
from kernels import triton_ivf  # noqa: E402


def _layout(n, d, nlist, seed, metric):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    cent = ref.kmeans(x, nlist, metric, iters=3)
    lab = ref.assign(x, cent, metric)
    order = torch.argsort(lab, stable=True)
    offsets = torch.zeros(nlist + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=nlist), 0)
    q = torch.randn(5, d, generator=g)
    return x[order].contiguous(), offsets, cent, q


def _devices():
    out = ["cpu"] if os.environ.get("TRITON_INTERPRET") == "1" else []
    if torch.cuda.is_available():
        out.append(pytest.param("cuda", marks=pytest.mark.gpu))
    return out or [pytest.param("cpu", marks=pytest.mark.skip(reason="no interpreter, no CUDA"))]


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("k", [1, 10])
def test_triton_ivf_equals_ref(device, metric, k):
    x, offsets, cent, q = _layout(300, 20, 6, 1, metric)
    x, offsets, cent, q = (t.to(device) for t in (x, offsets, cent, q))
    probes = ref.coarse_probe(q, cent, 3, metric)
    mask = (torch.arange(300, device=device) % 4) != 0
    d1, i1 = triton_ivf.ivf_search(q, x, offsets, probes, k, metric, mask)
    d2, i2 = ref.ivf_search(q, x, offsets, probes, k, metric, mask)
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    # tie-tolerant: every returned row is allowed and has the distance reported for it
    ok = i1 >= 0
    assert bool(mask[i1[ok]].all())
    assert torch.equal(ok, i2 >= 0)
    _assert_rows_have_distances(q, x, i1, d1, metric)


def _assert_rows_have_distances(q, x, idx, dist, metric):
    """Each returned row lies at the distance reported for it, and no row comes twice."""
    q = q.float()
    if metric == "COSINE":  # the caller normalises the queries (see ref.pairwise_distance)
        q = q / q.norm(dim=1, keepdim=True)
    full = ref.pairwise_distance(q, x.float(), metric)
    ok = idx >= 0
    got = torch.gather(full, 1, idx.clamp_min(0))
    torch.testing.assert_close(got[ok], dist[ok], rtol=1e-4, atol=1e-4)
    for row in idx.cpu().tolist():
        kept = [r for r in row if r >= 0]
        assert len(kept) == len(set(kept))


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric,k,split", [("L2", 20, 1), ("IP", 20, 3), ("L2", 64, 2)])
def test_triton_ivf_lists_longer_than_a_block(device, metric, k, split):
    """Lists of ~100-250 rows in blocks of 32 (and 64 for k=64): the running top-k is
    folded across blocks and, with split > 1, across programs of the same list."""
    x, offsets, cent, q = _layout(700, 16, 4, 4, metric)
    x, offsets, cent, q = (t.to(device) for t in (x, offsets, cent, q))
    assert int((offsets[1:] - offsets[:-1]).max()) > 64
    probes = ref.coarse_probe(q, cent, 2, metric)
    mask = (torch.arange(700, device=device) % 5) != 0
    d1, i1 = triton_ivf.ivf_search(q, x, offsets, probes, k, metric, mask, block=32,
                                   split=split)
    d2, i2 = ref.ivf_search(q, x, offsets, probes, k, metric, mask)
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    assert torch.equal(i1 >= 0, i2 >= 0)
    assert bool(mask[i1[i1 >= 0]].all())
    _assert_rows_have_distances(q, x, i1, d1, metric)


def test_keys_carry_distance_and_row():
    """The int64 key keeps the float order (negatives, zeros, +inf) and the row."""
    d = torch.tensor([-3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, 7e30, float("inf")])
    rows = torch.tensor([5, 0, 9, 2**31 - 2, 7, 1, 3, 2**31 - 1])
    bits = d.view(torch.int32)
    high = (bits ^ ((bits >> 31) & 0x7FFFFFFF)).to(torch.int64) << 32
    keys = high | rows
    assert torch.equal(torch.argsort(keys), torch.arange(8))  # order of d, then of row
    dist, idx = triton_ivf.decode_keys(keys)
    assert torch.equal(dist[:-1], d[:-1]) and torch.isinf(dist[-1])
    assert torch.equal(idx[:-1], rows[:-1]) and int(idx[-1]) == -1


@pytest.mark.parametrize("device", _devices())
def test_triton_ivf_range_and_short_lists(device):
    x, offsets, cent, q = _layout(90, 8, 12, 2, "L2")
    x, offsets, cent, q = (t.to(device) for t in (x, offsets, cent, q))
    probes = ref.coarse_probe(q, cent, 12, "L2")
    d1, i1 = triton_ivf.ivf_search(q, x, offsets, probes, 16, "L2", lo=2.0, hi=30.0)
    d2, i2 = ref.ivf_search(q, x, offsets, probes, 16, "L2", lo=2.0, hi=30.0)
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    kept = d1[torch.isfinite(d1)]
    assert bool(((kept >= 2.0) & (kept < 30.0)).all())


def test_dispatch_forced_triton_runs_the_fused_kernel_on_cpu(monkeypatch):
    from kernels import dispatch

    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    x, offsets, cent, q = _layout(200, 8, 4, 3, "IP")
    probes = ref.coarse_probe(q, cent, 2, "IP")
    d1, _ = dispatch.ivf_search(q, x, offsets, probes, 5, "IP")
    d2, _ = ref.ivf_search(q, x, offsets, probes, 5, "IP")
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    monkeypatch.setenv("HOTSET_KERNELS", "bogus")
    with pytest.raises(ValueError, match="HOTSET_KERNELS"):
        dispatch.ivf_search(q, x, offsets, probes, 5, "IP")

"""The Triton HNSW beam search equals its plain-torch twin (``hnsw.hnsw_search`` with the
same width), on the CPU through the Triton interpreter and, marked gpu, on CUDA."""
import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed")
pytest.importorskip("faiss")

from engine.index.hnsw import build_graph  # noqa: E402
from kernels import hnsw, ref  # noqa: E402
from kernels import triton_hnsw  # noqa: E402

from .test_triton_ivf import _devices  # noqa: E402


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("metric, ef, width, masked", [
    ("L2", 16, 4, False), ("IP", 16, 2, True), ("COSINE", 16, 4, True)])
def test_triton_hnsw_equals_twin(device, metric, ef, width, masked):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 16, generator=g)
    q = torch.randn(2, 16, generator=g)   # few: the interpreter takes seconds a query
    graph = build_graph(x, 8, 40, metric)       # level-0 degree 16
    mask = (torch.arange(400) % 3 != 0) if masked else None
    d2, i2 = hnsw.hnsw_search(q, x, graph, 10, ef, metric, mask, width=width)
    on = {k: v.to(device) for k, v in graph.items()}
    d1, i1 = triton_hnsw.hnsw_search(q.to(device), x.to(device), on, 10, ef, metric,
                                     None if mask is None else mask.to(device), width=width,
                                     block_d=8)
    d1, i1 = d1.cpu(), i1.cpu()
    torch.testing.assert_close(d1, d2, rtol=1e-4, atol=1e-4)
    same = (i1 == i2) | torch.isclose(d1, d2, rtol=1e-4, atol=1e-4)
    assert bool(same.all())
    if mask is not None:
        assert bool(mask[i1[i1 >= 0]].all())
    # every distance is the row's true distance
    qq = q / q.norm(dim=1, keepdim=True) if metric == "COSINE" else q
    full = ref.pairwise_distance(qq, x, metric)
    ok = i1 >= 0
    torch.testing.assert_close(full.gather(1, i1.clamp_min(0))[ok], d1[ok], rtol=1e-4,
                               atol=1e-4)


def test_fits_bounds_the_registers():
    assert triton_hnsw.fits(64, 4, 32) and not triton_hnsw.fits(256, 4, 32)
    assert not triton_hnsw.fits(64, 4, 60) and triton_hnsw.fits(64, 2, 60)
    assert triton_hnsw.width_for(32) == 4 and triton_hnsw.width_for(60) == 2
    assert not triton_hnsw.fits(64, triton_hnsw.width_for(200), 200)


def test_dispatch_sends_cuda_searches_that_fit_to_the_kernel(monkeypatch):
    from kernels import dispatch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g)
    graph = build_graph(x, 8, 40, "L2")
    calls = []

    class Fake:
        fits, width_for = staticmethod(triton_hnsw.fits), staticmethod(triton_hnsw.width_for)

        @staticmethod
        def hnsw_search(*a, width, **k):
            calls.append(width)
            return hnsw.hnsw_search(*a, width=width, **k)

    monkeypatch.setattr(dispatch, "_triton_hnsw", lambda: Fake)
    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    dispatch.hnsw_search(x[:2], x, graph, 5, 32, "L2")
    dispatch.hnsw_search(x[:2], x, graph, 5, 512, "L2")   # a beam past MAX_EF: the twin
    assert calls == [4]
    monkeypatch.setenv("HOTSET_KERNELS", "torch")
    dispatch.hnsw_search(x[:2], x, graph, 5, 32, "L2")
    assert calls == [4]

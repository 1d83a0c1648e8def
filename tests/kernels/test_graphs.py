"""kernels/graphs.py: a search shape runs eagerly once, is captured the second time and
replayed after; graphs die with the tensors they read in place; the cache is bounded. On
the CPU with a stand-in capture (recomputing into the graph's output tensors, as a replay
writes them); marked gpu, real CUDA graphs through the dispatch, equal to launching."""
import gc
import weakref

import pytest
import torch

from kernels import dispatch, graphs


def _fake_capture(log):
    def capture(fn, static):
        log.append("capture")
        outs = tuple(fn(*static))

        def replay():
            for o, new in zip(outs, fn(*static)):
                o.copy_(new)
        return replay, outs
    return capture


def _scan(held):
    """A function of (queries, mask) reading ``held`` in place (weakly: as a CUDA graph,
    the stand-in's replay must not keep it alive)."""
    ref = weakref.ref(held)
    return lambda q, m: ((q @ ref().T) * (1 if m is None else m), q.sum(1))


def test_first_call_eager_second_captured_then_replayed():
    log = []
    g = graphs.Graphs(capture=_fake_capture(log))
    held = torch.randn(5, 3)
    fn = _scan(held)
    outs = []
    for seed in range(4):
        q = torch.randn(2, 3, generator=torch.Generator().manual_seed(seed))
        got = g.run("scan", fn, (q, None), (held,), (10,))
        want = fn(q, None)
        torch.testing.assert_close(got[0], want[0])
        torch.testing.assert_close(got[1], want[1])
        outs.append(got)
    assert log == ["capture"] and (g.captures, g.replays) == (1, 3)  # calls 2, 3, 4
    # results are copies: the next replay does not overwrite what a caller holds
    torch.testing.assert_close(outs[2][1], torch.randn(
        2, 3, generator=torch.Generator().manual_seed(2)).sum(1))


def test_a_new_key_per_shape_constants_and_held_tensor():
    g = graphs.Graphs(capture=_fake_capture([]))
    held, other = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.randn(2, 3)
    for _ in range(2):
        g.run("scan", _scan(held), (q, None), (held,), (10,))
        g.run("scan", _scan(held), (q, None), (held,), (11,))           # constants
        g.run("scan", _scan(held), (q[:1], None), (held,), (10,))       # shape
        g.run("scan", _scan(other), (q, None), (other,), (10,))         # held tensor
        g.run("scan", _scan(held), (q, torch.ones(5)), (held,), (10,))  # an input present
    assert g.captures == 5 and len(g) == 5


def test_a_graph_dies_with_a_held_tensor_and_is_recaptured():
    log = []
    g = graphs.Graphs(capture=_fake_capture(log))
    q = torch.randn(2, 3)
    held = torch.randn(64, 3)
    view = held[:5]                       # a growing segment's rows: a view of its buffer
    for _ in range(2):
        g.run("scan", _scan(view), (q, None), (view,), ())
    assert g.captures == 1
    del view, held
    gc.collect()
    fresh = torch.randn(5, 3)
    got = [g.run("scan", _scan(fresh), (q, None), (fresh,), ()) for _ in range(2)]
    torch.testing.assert_close(got[-1][0], q @ fresh.T)
    assert len(g) == 1                   # the dead graph was dropped, not kept beside


def test_the_cache_is_bounded_least_recently_used_first():
    g = graphs.Graphs(capacity=2, capture=_fake_capture([]))
    held = torch.randn(5, 3)
    for nq in (1, 2, 3, 1):
        for _ in range(2):
            g.run("scan", _scan(held), (torch.randn(nq, 3), None), (held,), ())
    assert len(g) == 2 and g.captures == 4
    g.clear()
    assert len(g) == 0


def test_graphs_env_is_checked(monkeypatch):
    monkeypatch.setenv("HOTSET_CUDA_GRAPHS", "yes")
    with pytest.raises(ValueError, match="HOTSET_CUDA_GRAPHS"):
        dispatch._graphs_on()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphs_equal_launching(monkeypatch):
    pytest.importorskip("triton")
    from .test_dispatch import _data

    cent, xs, offsets, q = (t.cuda() for t in _data(n=20000, d=64, nq=8, nlist=64))
    x_sq = (xs * xs).sum(1)
    mask = torch.arange(xs.shape[0], device="cuda") % 3 != 0
    dispatch.GRAPHS.clear()

    def once():
        probes = dispatch.coarse_probe(q[:1], cent, 8, "L2")
        return (*dispatch.ivf_search(q[:1], xs, offsets, probes, 10, "L2", mask, x_sq=x_sq),
                *dispatch.flat_search(q[:1], xs, 10, "L2", mask, x_sq=x_sq))

    monkeypatch.setenv("HOTSET_CUDA_GRAPHS", "0")
    want = once()
    monkeypatch.setenv("HOTSET_CUDA_GRAPHS", "1")
    got = [once() for _ in range(3)]
    assert dispatch.GRAPHS.captures >= 3 and dispatch.GRAPHS.replays >= 3
    for a, b in zip(got[-1], want):
        torch.testing.assert_close(a, b)
    torch.cuda.set_sync_debug_mode("error")  # replays never wait for the device
    try:
        once()
    finally:
        torch.cuda.set_sync_debug_mode(0)

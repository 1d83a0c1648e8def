"""kernels/dispatch.py: large searches are sliced (rows for FLAT, queries for IVF) so their
temporaries stay bounded, with the same results as one pass; the Triton kernel is only
launched within a CUDA grid's limits."""
import pytest
import torch

from kernels import dispatch, ref

from .test_ref import _ivf_layout


def _data(n=600, d=12, nq=40, nlist=8, metric="L2", seed=11):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    q = torch.randn(nq, d, generator=g)
    cent, xs, offsets = _ivf_layout(x, nlist, metric)
    return cent, xs, offsets, q


def _same(got, want):
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(got[1], want[1])


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_ivf_slices_queries_when_candidates_pass_the_budget(metric, monkeypatch):
    cent, xs, offsets, q = _data(metric=metric)
    probes = ref.coarse_probe(q, cent, 3, metric)
    mask = torch.arange(xs.shape[0]) % 5 != 0
    want = ref.ivf_search(q, xs, offsets, probes, 10, metric, mask)
    calls = []
    real = ref.ivf_search

    def counted(q_, *a, **k):
        calls.append(q_.shape[0])
        return real(q_, *a, **k)

    monkeypatch.setattr(ref, "ivf_search", counted)
    monkeypatch.setattr(dispatch, "IVF_BYTES", 7 * 3 * (10 * 12 + 12 * 4))  # 7 queries
    _same(dispatch.ivf_search(q, xs, offsets, probes, 10, metric, mask), want)
    assert calls == [7] * 5 + [5]
    calls.clear()
    monkeypatch.setattr(dispatch, "IVF_BYTES", 256 << 20)
    _same(dispatch.ivf_search(q, xs, offsets, probes, 10, metric, mask), want)
    assert calls == [40]


def test_query_step_bounds_temporaries_by_the_longest_list_not_k():
    offsets = torch.tensor([0, 100, 350, 400])  # longest list: 250 rows
    assert dispatch.query_step(1000, 128, 10, 128, offsets) == 1000  # 81 MB: one pass
    per_query = 128 * (250 * 12 + 128 * 4)  # k = 16384 but no list has over 250 rows
    step = dispatch.query_step(16384, 128, 16384, 128, offsets)
    assert step * per_query <= dispatch.IVF_BYTES < (step + 1) * per_query
    step = dispatch.query_step(16384, 128, 10, 128, offsets)  # the queries' copies count
    assert step * 128 * (10 * 12 + 128 * 4) <= dispatch.IVF_BYTES and step < 16384
    assert dispatch.query_step(5, 70000, 16384, 128, torch.tensor([0, 10**6])) == 1


def test_ivf_with_k_above_every_list_equals_flat():
    """k far above the longest list (the large-batch path keeps min(k, list) candidates per
    (query, list) pair, then pads to k): all lists probed, it is exact search."""
    cent, xs, offsets, q = _data(n=300, nlist=6, nq=20)
    probes = ref.coarse_probe(q, cent, 6, "L2")
    d, i = ref.ivf_search(q, xs, offsets, probes, 500, "L2")
    fd, fi = ref.flat_search(q, xs, 500, "L2")
    assert d.shape == (20, 500) and bool((i[:, 300:] == -1).all())
    torch.testing.assert_close(d, fd, rtol=1e-4, atol=1e-4)
    assert torch.equal(torch.sort(i, 1).values, torch.sort(fi, 1).values)


def test_flat_slices_rows_when_the_distance_block_passes_the_budget(monkeypatch):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5000, 8, generator=g)
    q = torch.randn(30, 8, generator=g)
    want = ref.flat_search(q, x, 15, "IP", chunk=1 << 16)
    chunks = []
    real = ref.flat_search

    def seen(*a, chunk, **k):
        chunks.append(chunk)
        return real(*a, chunk=chunk, **k)

    monkeypatch.setattr(ref, "flat_search", seen)
    monkeypatch.setattr(dispatch, "FLAT_CELLS", 30 * 1500)
    _same(dispatch.flat_search(q, x, 15, "IP"), want)
    assert chunks == [1500]


def test_triton_is_not_launched_past_the_grid_limit(monkeypatch):
    cent, xs, offsets, q = _data(nq=3)
    probes = ref.coarse_probe(q, cent, 4, "L2")

    class NoTriton:
        def ivf_search(self, *a, **k):
            raise AssertionError("launched with nprobe above the grid limit")

    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    monkeypatch.setattr(dispatch, "_triton", lambda: NoTriton())
    monkeypatch.setattr(dispatch, "GRID_Y_MAX", 3)
    _same(dispatch.ivf_search(q, xs, offsets, probes, 5, "L2"),
          ref.ivf_search(q, xs, offsets, probes, 5, "L2"))
    monkeypatch.setattr(dispatch, "GRID_Y_MAX", 4)
    with pytest.raises(AssertionError, match="grid limit"):
        dispatch.ivf_search(q, xs, offsets, probes, 5, "L2")


def test_quantised_scans_go_to_triton_when_asked_and_slice_queries(monkeypatch):
    from kernels import quant

    cent, xs, offsets, q = _data(nq=9)
    probes = ref.coarse_probe(q, cent, 3, "L2")
    t = quant.sq8_train(xs)
    codes = quant.sq8_encode(xs, t["vmin"], t["vdiff"])
    want = ref.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, 5, "L2")
    seen = []

    class Fused:
        def ivf_sq8_search(self, q_, *a, **k):
            seen.append(q_.shape[0])
            return ref.ivf_sq8_search(q_, *a, **k)

    monkeypatch.setattr(dispatch, "_triton_quant", lambda: Fused())
    monkeypatch.setenv("HOTSET_KERNELS", "torch")
    _same(dispatch.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, 5, "L2"),
          want)
    assert seen == []
    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    monkeypatch.setattr(dispatch, "IVF_BYTES", 4 * 3 * (5 * 12 + xs.shape[1] * 4))  # 4 queries
    _same(dispatch.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, 5, "L2"),
          want)
    assert seen == [4, 4, 1]


@pytest.fixture
def cpu_table(monkeypatch, tmp_path):
    """Writes a crossover table for the "cpu" device (the interpreter's), read afresh."""
    from kernels import crossover

    monkeypatch.setenv("HOTSET_KERNEL_TABLE", str(tmp_path / "kernels.json"))
    yield lambda **measured: crossover.save("cpu", measured, {"measured_on": "test"})
    crossover.thresholds.cache_clear()


def test_large_batches_per_list_go_to_the_grouped_kernel(monkeypatch, cpu_table):
    cent, xs, offsets, q = _data(nq=40)
    probes = ref.coarse_probe(q, cent, 3, "L2")
    want = ref.ivf_search(q, xs, offsets, probes, 5, "L2")
    used = []

    def fake(name):
        class Scan:
            @staticmethod
            def ivf_search(*a, precision=None):
                used.append((name, precision))
                return ref.ivf_search(*a)

            @staticmethod
            def flat_search(q_, x_, k_, metric, *a, precision=None):
                used.append((name + " flat", precision))
                return ref.flat_search(q_, x_, k_, metric, *a[:1], lo=a[1], hi=a[2],
                                       x_sq=a[3])
        return Scan

    monkeypatch.setattr(dispatch, "_triton_module", fake)
    monkeypatch.setattr(dispatch, "_triton", lambda: fake("triton_ivf"))
    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    per_list = 40 * 3 / (offsets.numel() - 1)
    cpu_table(ivf_flat=per_list, flat=41)
    _same(dispatch.ivf_search(q, xs, offsets, probes, 5, "L2"), want)
    _same(dispatch.flat_search(q, xs, 5, "L2"), ref.flat_search(q, xs, 5, "L2"))
    cpu_table(ivf_flat=per_list + 1, flat=40)
    _same(dispatch.ivf_search(q, xs, offsets, probes, 5, "L2"), want)
    _same(dispatch.flat_search(q, xs, 5, "L2"), ref.flat_search(q, xs, 5, "L2"))
    monkeypatch.setenv("HOTSET_TF32", "0")
    cpu_table(ivf_flat=0)
    _same(dispatch.ivf_search(q, xs, offsets, probes, 5, "L2"), want)
    # TF32 in the grouped IVF scan unless turned off; FLAT always exact
    assert used == [("triton_grouped", "tf32"), ("triton_ivf", None),
                    ("triton_grouped flat", "ieee"), ("triton_grouped", "ieee")]
    monkeypatch.setenv("HOTSET_TF32", "yes")
    with pytest.raises(ValueError, match="HOTSET_TF32"):
        dispatch.ivf_search(q, xs, offsets, probes, 5, "L2")


# aten ops that wait for the device on CUDA: a scalar read, or an output whose size
# depends on the data
_SYNCING = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2",
            "repeat_interleave.Tensor")


@pytest.mark.skipif(__import__("os").environ.get("TRITON_INTERPRET") != "1",
                    reason="runs the Triton kernels under the interpreter")
@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_a_small_search_never_waits_for_the_device(monkeypatch, metric):
    """The path a batch-1 search takes on CUDA (coarse probe, per-pair scan of IVF_FLAT,
    IVF_SQ8 and IVF_PQ, FLAT through the grouped kernel, the merge of two segments) asks
    the device nothing back: what lets it run from a CUDA graph. Watched at the aten level
    while it runs on the CPU under the interpreter."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from kernels import quant

    cent, xs, offsets, q = _data(nq=1, metric=metric)
    x_sq = (xs * xs).sum(1)
    mask = torch.arange(xs.shape[0]) % 3 != 0
    t = quant.sq8_train(xs)
    codes = quant.sq8_encode(xs, t["vmin"], t["vdiff"])
    lab = torch.repeat_interleave(torch.arange(cent.shape[0]), offsets[1:] - offsets[:-1])
    res = quant.residuals(xs, cent, lab)
    cb = quant.pq_train(res, 4)
    pq_codes = quant.pq_encode(res, cb)
    monkeypatch.setenv("HOTSET_KERNELS", "triton")
    seen = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Watch():
        probes = dispatch.coarse_probe(q, cent, 3, metric)
        a = dispatch.ivf_search(q, xs, offsets, probes, 10, metric, mask, x_sq=x_sq)
        b = dispatch.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, 10,
                                    metric, mask)
        c = dispatch.ivf_pq_search(q, pq_codes, cent, cb, offsets, probes, 10, metric, mask)
        d = dispatch.flat_search(q, xs, 10, metric, mask, x_sq=x_sq)
        dispatch.merge_topk(*a, *d, 10)
    assert seen and not [op for op in seen if any(s in op for s in _SYNCING)]
    _same(a, ref.ivf_search(q, xs, offsets, probes, 10, metric, mask))
    _same(d, ref.flat_search(q, xs, 10, metric, mask))
    assert b[1].shape == c[1].shape == (1, 10)

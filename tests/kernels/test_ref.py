import pytest
import torch

from kernels import ref


def _brute(q, x, metric):
    q = q.double()
    x = x.double()
    if metric == "L2":
        return torch.cdist(q, x) ** 2
    if metric == "IP":
        return -(q @ x.T)
    return -(torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(x, dim=1).T)


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("chunk", [7, 1 << 16])
def test_flat_search_matches_brute_force(metric, chunk):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(13, 16, generator=g)
    x = torch.randn(301, 16, generator=g)
    d, i = ref.flat_search(q, x, 10, metric, chunk=chunk)
    full = _brute(q, x, metric)
    exp_d, exp_i = torch.topk(full, 10, dim=1, largest=False)
    assert d.shape == (13, 10) and i.dtype == torch.int64
    torch.testing.assert_close(d.double(), exp_d, rtol=1e-4, atol=1e-3)
    # tie-tolerant: the distance of what we returned equals the true distance of that row
    torch.testing.assert_close(torch.gather(full, 1, i), exp_d, rtol=1e-4, atol=1e-3)


def test_mask_and_padding():
    x = torch.arange(20, dtype=torch.float32).reshape(10, 2)
    q = torch.zeros(2, 2)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[3, 7]] = True
    d, i = ref.flat_search(q, x, 5, "L2", mask)
    assert i[0, :2].tolist() == [3, 7]
    assert i[0, 2:].tolist() == [-1, -1, -1]
    assert torch.isinf(d[:, 2:]).all()


def test_k_larger_than_rows_pads():
    x = torch.randn(3, 4)
    d, i = ref.flat_search(torch.randn(1, 4), x, 6, "IP", chunk=2)
    assert sorted(i[0, :3].tolist()) == [0, 1, 2]
    assert i[0, 3:].tolist() == [-1, -1, -1]


def test_merge_topk_keeps_best():
    d1 = torch.tensor([[1.0, 5.0]])
    d2 = torch.tensor([[2.0, 0.5]])
    d, i = ref.merge_topk(d1, torch.tensor([[10, 11]]), d2, torch.tensor([[20, 21]]), 3)
    assert d.tolist() == [[0.5, 1.0, 2.0]] and i.tolist() == [[21, 10, 20]]


def test_half_precision_vectors():
    x = torch.randn(50, 8)
    q = x[:3].clone()
    _, i = ref.flat_search(q, x.to(torch.bfloat16), 1, "L2")
    assert i[:, 0].tolist() == [0, 1, 2]
    _, i = ref.flat_search(q, x.to(torch.float16), 1, "COSINE")
    assert i[:, 0].tolist() == [0, 1, 2]


def _blobs(n_per=50, k=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g) * 10
    x = torch.cat([c + torch.randn(n_per, d, generator=g) * 0.1 for c in centers])
    return x, centers


def test_kmeans_finds_separated_clusters():
    x, centers = _blobs()
    cent = ref.kmeans(x, 6, "L2", iters=15)
    # every true center has a learned centroid close to it
    d = torch.cdist(centers, cent)
    assert (d.min(1).values < 1.0).all()
    lab = ref.assign(x, cent, "L2")
    assert len(torch.unique(lab)) == 6


def test_kmeans_spherical_for_ip_and_cosine():
    x, _ = _blobs()
    for metric in ("IP", "COSINE"):
        cent = ref.kmeans(x, 4, metric)
        torch.testing.assert_close(cent.norm(dim=1), torch.ones(4))


def _ivf_layout(x, nlist, metric):
    cent = ref.kmeans(x, nlist, metric)
    lab = ref.assign(x, cent, metric)
    order = torch.argsort(lab, stable=True)
    offsets = torch.zeros(nlist + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=nlist), 0)
    return cent, x[order].contiguous(), offsets


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_ivf_with_all_lists_probed_equals_flat(metric):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(400, 12, generator=g)
    q = torch.randn(9, 12, generator=g)
    cent, xs, offsets = _ivf_layout(x, 16, metric)
    probes = ref.coarse_probe(q, cent, 16, metric)
    mask = torch.rand(400, generator=g) > 0.3
    d, i = ref.ivf_search(q, xs, offsets, probes, 7, metric, mask)
    fd, fi = ref.flat_search(q, xs, 7, metric, mask)
    torch.testing.assert_close(d, fd, rtol=1e-4, atol=1e-4)
    qn = torch.nn.functional.normalize(q, dim=1) if metric == "COSINE" else q
    full = ref.pairwise_distance(qn, xs, metric)
    torch.testing.assert_close(torch.gather(full, 1, i), fd, rtol=1e-4, atol=1e-4)
    assert bool(mask[i].all())


def test_ivf_scans_only_probed_lists_and_honours_range():
    x, _ = _blobs(n_per=30, k=4)
    cent, xs, offsets = _ivf_layout(x, 4, "L2")
    q = xs[offsets[2]:offsets[2] + 1]  # a row of list 2
    probes = ref.coarse_probe(q, cent, 1, "L2")
    assert probes.tolist() == [[2]]
    d, i = ref.ivf_search(q, xs, offsets, probes, 50, "L2")
    got = i[i >= 0]
    assert len(got) == 30 and bool(((got >= offsets[2]) & (got < offsets[3])).all())
    d, i = ref.ivf_search(q, xs, offsets, probes, 50, "L2", lo=1e-6, hi=0.1)
    kept = d[torch.isfinite(d)]
    assert len(kept) and bool(((kept >= 1e-6) & (kept < 0.1)).all())
    fd, _ = ref.flat_search(q, xs, 50, "L2", lo=1e-6, hi=0.1)
    assert torch.isfinite(fd).sum() >= len(kept)


@pytest.mark.parametrize("small", [True, False])
def test_a_list_probed_twice_counts_once(small, monkeypatch):
    """A query whose probes name a list several times gets that list's rows once: the
    same answer as with each list named once (no row twice in a result)."""
    if not small:
        monkeypatch.setattr(ref, "SMALL_BATCH_PAIRS", 0)
        monkeypatch.setattr(ref, "SMALL_BATCH_QUERIES", 0)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(400, 8, generator=g)
    cent, xs, offsets = _ivf_layout(x, 8, "L2")
    q = torch.randn(6, 8, generator=g)
    once = ref.coarse_probe(q, cent, 2, "L2")
    twice = torch.cat([once, once, once[:, :1]], 1)  # (6, 5): lists repeated
    d1, i1 = ref.ivf_search(q, xs, offsets, once, 30, "L2")
    d2, i2 = ref.ivf_search(q, xs, offsets, twice, 30, "L2")
    torch.testing.assert_close(d1, d2)
    for row in i2.tolist():
        kept = [r for r in row if r >= 0]
        assert len(kept) == len(set(kept))


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("nq, nprobe", [(1, 1), (1, 5), (3, 4), (2, 16), (4, 16)])
def test_small_batch_path_equals_list_loop(metric, nq, nprobe, monkeypatch):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(500, 10, generator=g)
    cent, xs, offsets = _ivf_layout(x, 16, metric)
    q = torch.randn(nq, 10, generator=g)
    probes = ref.coarse_probe(q, cent, nprobe, metric)
    mask = torch.rand(500, generator=g) > 0.2
    small = ref.ivf_search(q, xs, offsets, probes, 8, metric, mask, hi=50.0)
    monkeypatch.setattr(ref, "SMALL_BATCH_PAIRS", 0)  # force the per-list loop
    monkeypatch.setattr(ref, "SMALL_BATCH_QUERIES", 0)
    loop = ref.ivf_search(q, xs, offsets, probes, 8, metric, mask, hi=50.0)
    torch.testing.assert_close(small[0], loop[0], rtol=1e-4, atol=1e-4)
    assert torch.equal(small[1] >= 0, loop[1] >= 0)
    # each returned row is kept by the mask, lies in a list its query probed, and lies at
    # the distance reported for it
    qn = q / q.norm(dim=1, keepdim=True) if metric == "COSINE" else q
    full = ref.pairwise_distance(qn, xs, metric)
    for qi in range(nq):
        for dist, row in zip(small[0][qi].tolist(), small[1][qi].tolist()):
            if row < 0:
                continue
            lst = int(torch.searchsorted(offsets, torch.tensor(row), right=True)) - 1
            assert bool(mask[row]) and lst in probes[qi].tolist()
            assert abs(float(full[qi, row]) - dist) <= 1e-4 * max(1.0, abs(dist))


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_coarse_probe_ranks_lists_by_true_distance(metric):
    g = torch.Generator().manual_seed(8)
    cent = torch.randn(64, 12, generator=g)
    if metric != "L2":  # k-means leaves IP/COSINE centroids on the unit sphere
        cent = torch.nn.functional.normalize(cent, dim=1)
    q = torch.randn(7, 12, generator=g)
    exp = torch.topk(_brute(q, cent, metric), 5, dim=1, largest=False).indices
    assert torch.equal(ref.coarse_probe(q, cent, 5, metric), exp)
    kept = (cent * cent).sum(1)  # the norms a loaded collection keeps resident
    assert torch.equal(ref.coarse_probe(q, cent, 5, metric, c_sq=kept), exp)

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

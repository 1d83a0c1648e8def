"""The sparse inner-product kernel (postings, term at a time) against its dense twin."""
import pytest
import torch

from kernels import ref
from kernels.sparse import drop_smallest, postings, sparse_search


def _csr(n: int, dims: int, per_row: int, seed: int, empty_every: int = 0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, per_row + 1, (n,), generator=g)
    if empty_every:
        counts[::empty_every] = 0
    indptr = torch.zeros(n + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(counts, 0)
    idx = []
    for c in counts.tolist():  # distinct dimensions per row (test data only)
        idx.append(torch.randperm(dims, generator=g)[:c].sort().values)
    indices = torch.cat(idx).long() * 977  # far apart dimensions, as hashed vocabularies
    values = torch.rand(int(indptr[-1]), generator=g) + 0.01
    return indptr, indices, values


def _same(d, i, rd, ri):
    """Equal up to the order of ties: the same distances, each row at its own distance."""
    assert torch.equal(torch.isinf(d), torch.isinf(rd))
    fin = torch.isfinite(rd)
    assert torch.allclose(d[fin], rd[fin], rtol=1e-5, atol=1e-5)
    assert torch.equal(i[~fin], ri[~fin])


@pytest.mark.parametrize("k", [1, 10, 300])
@pytest.mark.parametrize("block", [1 << 24, 500])  # one query block, or many
def test_search_equals_dense_twin(k, block):
    indptr, indices, values = _csr(200, 60, 8, 0, empty_every=7)
    q_ptr, q_idx, q_val = _csr(37, 60, 6, 1, empty_every=11)
    post = postings(indptr, indices, values)
    d, i = sparse_search(q_ptr, q_idx, q_val, post, 200, k, block=block)
    rd, ri = ref.sparse_search(q_ptr, q_idx, q_val, indptr, indices, values, k)
    assert d.shape == (37, k) and i.shape == (37, k)
    _same(d, i, rd, ri)
    # each returned row really scores that: recompute from the dense rows
    dense = torch.zeros(200, 60 * 977)
    dense[ref_rows(indptr), indices] = values
    qd = torch.zeros(37, 60 * 977)
    qd[ref_rows(q_ptr), q_idx] = q_val
    ok = i >= 0
    got = -(qd[torch.arange(37)[:, None].expand_as(i)[ok]] * dense[i[ok]]).sum(1)
    assert torch.allclose(d[ok], got, atol=1e-5)


def ref_rows(indptr):
    return torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr.diff())


def test_mask_range_and_no_shared_dimension():
    indptr, indices, values = _csr(120, 40, 6, 2)
    q_ptr, q_idx, q_val = _csr(9, 40, 5, 3)
    post = postings(indptr, indices, values)
    mask = torch.rand(120, generator=torch.Generator().manual_seed(4)) > 0.4
    d, i = sparse_search(q_ptr, q_idx, q_val, post, 120, 50, mask, lo=-2.0, hi=-0.1)
    rd, ri = ref.sparse_search(q_ptr, q_idx, q_val, indptr, indices, values, 50, mask,
                               lo=-2.0, hi=-0.1)
    _same(d, i, rd, ri)
    hit = i[i >= 0]
    assert bool(mask[hit].all())
    assert bool(((d[i >= 0] >= -2.0) & (d[i >= 0] < -0.1)).all())
    # a query with no dimension in any row gets no hits at all
    none_ptr = torch.tensor([0, 1])
    d, i = sparse_search(none_ptr, torch.tensor([5]), torch.tensor([1.0]), post, 120, 4)
    assert bool((i == -1).all()) and bool(torch.isinf(d).all())


def test_empty_postings_and_empty_queries():
    post = postings(torch.zeros(4, dtype=torch.int64), torch.zeros(0, dtype=torch.int64),
                    torch.zeros(0))
    d, i = sparse_search(torch.tensor([0, 2]), torch.tensor([1, 2]), torch.tensor([1., 1.]),
                         post, 3, 5)
    assert bool((i == -1).all())
    indptr, indices, values = _csr(10, 5, 3, 5)
    d, i = sparse_search(torch.tensor([0, 0]), torch.zeros(0, dtype=torch.int64),
                         torch.zeros(0), postings(indptr, indices, values), 10, 3)
    assert i.shape == (1, 3) and bool((i == -1).all())


def test_drop_smallest_per_row():
    indptr = torch.tensor([0, 4, 4, 7])
    values = torch.tensor([0.4, 0.1, 0.3, 0.2, 0.9, 0.5, 0.7])
    keep = drop_smallest(indptr, values, 0.5)
    # row 0 drops its 2 smallest (0.1, 0.2); row 2 drops floor(1.5) = 1 (0.5)
    assert keep.tolist() == [True, False, True, False, True, False, True]
    assert bool(drop_smallest(indptr, values, 0.0).all())


def test_postings_leave_dropped_entries_out():
    indptr, indices, values = _csr(50, 20, 5, 6)
    one = torch.tensor([0, values.numel()])
    keep = drop_smallest(one, values, 0.3)
    post = postings(indptr, indices, values, keep)
    assert post["rows"].numel() == int(keep.sum())
    assert float(post["values"].min()) >= float(values[~keep].max())

"""Grouping search against a brute-force grouping of exact distances: the limit groups
with the best hits, each with its best group_size hits, settled exactly even when the
first scan's candidates do not settle it (a group holding most of the rows)."""
from __future__ import annotations

import numpy as np
import pytest

from engine import DataType
from engine.errors import MilvusException, ParamError

N, DIM = 400, 4


@pytest.fixture
def grouped_coll(cpu_client):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("doc", DataType.VARCHAR, max_length=16)
    s.add_field("score", DataType.DOUBLE)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("g", schema=s, index_params=p)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    # doc "big" owns 90% of the rows, so the best few hundred hits are mostly one group
    docs = ["big" if i % 10 else f"d{i % 7}" for i in range(N)]
    c.insert("g", [{"id": i, "v": x[i].tolist(), "doc": docs[i], "score": float(i)}
                   for i in range(N)])
    c.flush("g")
    return c, x, docs, rng.standard_normal((3, DIM)).astype(np.float32)


def _want(x, docs, q, limit, size):
    d = ((x - q) ** 2).sum(1)
    groups: dict[str, list[int]] = {}
    for i in np.argsort(d, kind="stable"):
        g = docs[i]
        if g not in groups and len(groups) == limit:
            continue
        groups.setdefault(g, [])
        if len(groups[g]) < size:
            groups[g].append(int(i))
    return [i for members in groups.values() for i in members], d


@pytest.mark.parametrize("limit,size", [(3, 1), (4, 2), (8, 3)])
def test_grouping_is_exact(grouped_coll, limit, size):
    c, x, docs, qs = grouped_coll
    got = c.search("g", qs.tolist(), limit=limit, group_by_field="doc", group_size=size,
                   output_fields=["score"])
    for qi, q in enumerate(qs):
        want, d = _want(x, docs, q, limit, size)
        assert [h["id"] for h in got[qi]] == want
        assert [h["distance"] for h in got[qi]] == pytest.approx([float(d[i]) for i in want],
                                                                 rel=1e-5, abs=1e-5)
        assert all(h["entity"]["doc"] == docs[h["id"]] for h in got[qi])
        assert all(h["entity"]["score"] == float(h["id"]) for h in got[qi])


def test_grouping_refusals(grouped_coll):
    c, x, docs, qs = grouped_coll
    q = qs[:1].tolist()
    with pytest.raises(ParamError, match="DOUBLE"):
        c.search("g", q, group_by_field="score")
    with pytest.raises(MilvusException) as e:
        c.search("g", q, group_by_field="nope")
    assert e.value.code == 1700
    with pytest.raises(ParamError, match="group_size"):
        c.search("g", q, group_by_field="doc", group_size=0)
    with pytest.raises(ParamError, match="needs group_by_field"):
        c.search("g", q, group_size=3)
    with pytest.raises(ParamError, match="offset"):
        c.search("g", q, group_by_field="doc", offset=2)
    with pytest.raises(ParamError, match="group_by_fields"):
        c.search("g", q, group_by_fields=["doc"])

"""Decay and boost rerankers (engine/rerank.py): the decay curves' defining points, final
scores as Milvus defines them against a recomputation from the plain search, boosts by
filter, offset and rounding after the rerank, and the refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine import DataType
from engine.errors import ParamError
from engine.rerank import Decay


@pytest.mark.parametrize("fn", ["gauss", "exp", "linear"])
def test_decay_curves(fn):
    d = Decay("t", fn, origin=100.0, scale=20.0, offset=5.0, decay=0.3)
    v = np.array([100.0, 104.0, 95.0, 125.0, 75.0, 1e9, np.nan])
    s = d.scores(v)
    assert np.allclose(s[:3], 1.0)               # inside the offset: full score
    assert np.allclose(s[3:5], 0.3)              # at offset + scale: the decay value
    assert s[5] < 1e-6 and s[6] == 0.0           # far away; null
    assert np.all(np.diff(d.scores(np.linspace(105, 400, 50))) <= 1e-12)  # never rises


@pytest.fixture
def coll(cpu_client):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("ts", DataType.INT64, nullable=True)
    s.add_field("kind", DataType.VARCHAR, max_length=4)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("c", schema=s, index_params=p)
    rng = np.random.default_rng(1)
    c.insert("c", [{"id": i, "v": rng.random(2).tolist(), "kind": "ab"[i % 2],
                    "ts": None if i == 3 else int(rng.integers(0, 1000))} for i in range(200)])
    return c


def _decay(fn="gauss", **kw):
    return {"name": "d", "input_field_names": ["ts"],
            "params": {"reranker": "decay", "function": fn, "origin": 500, "scale": 100, **kw}}


def test_final_scores_are_milvus_s(coll):
    q = [[0.5, 0.5]]
    plain = coll.search("c", q, limit=20, output_fields=["ts"])[0]
    got = coll.search("c", q, limit=20, ranker=_decay())[0]
    sigma2 = -100 ** 2 / (2 * math.log(0.5))
    want = {}
    for h in plain:
        ts = h["entity"]["ts"]
        decay = 0.0 if ts is None else math.exp(-(ts - 500) ** 2 / (2 * sigma2))
        want[h["id"]] = (1 - 2 * math.atan(h["distance"]) / math.pi) * decay
    assert {h["id"] for h in got} == set(want)   # the same candidates, re-sorted
    assert all(h["entity"] == {} for h in got)   # ts was fetched for the rerank only
    assert [h["id"] for h in got] == sorted(want, key=lambda k: -want[k])
    assert np.allclose([h["distance"] for h in got], [want[h["id"]] for h in got])
    paged = coll.search("c", q, limit=5, offset=3, ranker=_decay(), round_decimal=3,
                        output_fields=["ts"])[0]
    top8 = coll.search("c", q, limit=8, ranker=_decay())[0]
    assert [h["id"] for h in paged] == [h["id"] for h in top8[3:]]
    assert all(round(h["distance"], 3) == h["distance"] and "ts" in h["entity"]
               for h in paged)


def test_boost_and_modes(coll):
    q = [[0.1, 0.9]]
    plain = coll.search("c", q, limit=10, output_fields=["kind"])[0]
    boost = {"name": "b", "params": {"reranker": "boost", "filter": "kind == 'a'",
                                     "weight": 10}}
    got = coll.search("c", q, limit=10, ranker=boost, output_fields=["kind"])[0]
    rel = {h["id"]: 1 - 2 * math.atan(h["distance"]) / math.pi for h in plain}
    for h in got:
        assert math.isclose(h["distance"], rel[h["id"]] * (10 if h["entity"]["kind"] == "a"
                                                            else 1))
    assert [h["entity"]["kind"] for h in got][:5] == ["a"] * 5
    both = {"functions": [boost, _decay("linear")], "params": {"function_mode": "sum",
                                                               "boost_mode": "sum"}}
    assert len(coll.search("c", q, limit=10, ranker=both)[0]) == 10


@pytest.mark.parametrize("ranker,match", [
    ({"params": {"reranker": "model", "provider": "tei"}}, "outside model service"),
    ({"params": {"reranker": "boost", "weight": 2, "random_score": {"seed": 1}}},
     "random_score"),
    (_decay(decay=1.5), "between 0 and 1"),
    (_decay(scale=0), "greater than 0"),
    (_decay("cubic"), "not supported"),
    (_decay(extra=1), "not supported"),
    ({"input_field_names": ["kind"], "params": {"reranker": "decay", "function": "exp",
                                                 "origin": 0, "scale": 1}}, "numeric field"),
    ({"functions": [_decay()], "params": {"boost_mode": "max"}}, "boost_mode"),
    ({"params": {"reranker": "rrf"}}, "not supported"),
])
def test_refusals(coll, ranker, match):
    with pytest.raises(ParamError, match=match):
        coll.search("c", [[0, 0]], limit=3, ranker=ranker)


def test_not_with_grouping(coll):
    with pytest.raises(ParamError, match="group_by_field"):
        coll.search("c", [[0, 0]], limit=3, ranker=_decay(), group_by_field="kind")


def test_decay_ranker_on_hybrid_search(coll):
    """Milvus: the best relevance any search gave the hit, times the decay."""
    from engine import AnnSearchRequest

    q1, q2 = [[0.2, 0.2]], [[0.8, 0.7]]
    reqs = [AnnSearchRequest(q1, "v", {}, 15), AnnSearchRequest(q2, "v", {}, 15)]
    got = coll.hybrid_search("c", reqs, _decay("exp"), limit=10, output_fields=["kind"])[0]
    rel = {}
    for q in (q1, q2):
        for h in coll.search("c", q, limit=15, output_fields=["ts"])[0]:
            r = 1 - 2 * math.atan(h["distance"]) / math.pi
            ts = h["entity"]["ts"]
            d = 0.0 if ts is None else 0.5 ** (abs(ts - 500) / 100)
            rel[h["id"]] = max(rel.get(h["id"], (0, 0))[0], r), d
    want = {k: r * d for k, (r, d) in rel.items()}
    best = sorted(want, key=lambda k: -want[k])[:10]
    assert [h["id"] for h in got] == best
    assert np.allclose([h["distance"] for h in got], [want[k] for k in best])
    assert all(set(h["entity"]) == {"kind"} for h in got)

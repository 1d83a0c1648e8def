"""hybrid_search through the embedded client, against the fusion computed by hand from
two exact searches: RRF and weighted scores as Milvus defines them, filters per search,
output fields for the winners, offset, and the refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine import AnnSearchRequest, DataType, MilvusClient, RRFRanker, WeightedRanker
from engine.errors import ParamError

N, DIM = 60, 4


@pytest.fixture
def two_vectors(cpu_client):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.INT64)
    p = c.prepare_index_params()
    p.add_index("a", "FLAT", metric_type="L2")
    p.add_index("b", "FLAT", metric_type="COSINE")
    c.create_collection("h", schema=s, index_params=p)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((N, DIM)), rng.standard_normal((N, DIM))
    c.insert("h", [{"id": i, "a": a[i].tolist(), "b": b[i].tolist(), "tag": i % 3}
                   for i in range(N)])
    return c, a, b, rng.standard_normal((2, DIM)), rng.standard_normal((2, DIM))


def _exact(x, q, metric, k, keep):
    if metric == "L2":
        d = ((x - q) ** 2).sum(1)
        order = [i for i in np.argsort(d) if keep(i)][:k]
        return [(int(i), float(d[i])) for i in order]
    xs = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xs @ (q / np.linalg.norm(q))
    order = [i for i in np.argsort(-s) if keep(i)][:k]
    return [(int(i), float(s[i])) for i in order]


def test_rrf_and_weighted_scores_are_milvus_s(two_vectors):
    c, a, b, qa, qb = two_vectors
    reqs = [AnnSearchRequest(qa.tolist(), "a", {"metric_type": "L2"}, 10),
            AnnSearchRequest(qb.tolist(), "b", {"metric_type": "COSINE"}, 8, "tag != 1")]
    got = c.hybrid_search("h", reqs, RRFRanker(20), limit=5, output_fields=["tag"])
    for qi in range(2):
        want: dict[int, float] = {}
        for hits in (_exact(a, qa[qi], "L2", 10, lambda i: True),
                     _exact(b, qb[qi], "COSINE", 8, lambda i: i % 3 != 1)):
            for rank, (i, _) in enumerate(hits, start=1):
                want[i] = want.get(i, 0.0) + 1.0 / (20 + rank)
        top = sorted(want.items(), key=lambda kv: -kv[1])[:5]
        assert [h["distance"] for h in got[qi]] == pytest.approx([s for _, s in top])
        assert all(want[h["id"]] == pytest.approx(h["distance"]) for h in got[qi])
        assert all(h["entity"] == {"tag": h["id"] % 3} for h in got[qi])
    got = c.hybrid_search("h", reqs, WeightedRanker(0.3, 0.7), limit=4)
    for qi in range(2):
        want = {}
        for w, metric, hits in ((0.3, "L2", _exact(a, qa[qi], "L2", 10, lambda i: True)),
                                (0.7, "COSINE", _exact(b, qb[qi], "COSINE", 8,
                                                       lambda i: i % 3 != 1))):
            for i, s in hits:
                norm = 1 - 2 * math.atan(s) / math.pi if metric == "L2" else (1 + s) / 2
                want[i] = want.get(i, 0.0) + w * norm
        top = sorted(want.values(), reverse=True)[:4]
        assert [h["distance"] for h in got[qi]] == pytest.approx(top, rel=1e-5)
        assert all(h["entity"] == {} for h in got[qi])


def test_offset_round_decimal_and_partitions(two_vectors):
    c, a, b, qa, qb = two_vectors
    reqs = [AnnSearchRequest(qa.tolist(), "a", {}, 10), AnnSearchRequest(qb.tolist(), "b", {}, 10)]
    full = c.hybrid_search("h", reqs, RRFRanker(), limit=6)
    page = c.hybrid_search("h", reqs, RRFRanker(), limit=3, offset=3, round_decimal=3)
    for qi in range(2):
        assert [h["id"] for h in page[qi]] == [h["id"] for h in full[qi][3:6]]
        assert [h["distance"] for h in page[qi]] == [round(h["distance"], 3)
                                                     for h in full[qi][3:6]]
    c.create_partition("h", "empty")
    assert c.hybrid_search("h", reqs, RRFRanker(), limit=3,
                           partition_names=["empty"]) == [[], []]


def test_refusals(two_vectors):
    c, a, b, qa, qb = two_vectors
    one = AnnSearchRequest(qa.tolist(), "a", {}, 5)
    with pytest.raises(ParamError, match="weights"):
        c.hybrid_search("h", [one, one], WeightedRanker(0.5), limit=3)
    with pytest.raises(ParamError, match="range"):
        c.hybrid_search("h", [one], WeightedRanker(1.5), limit=3)
    with pytest.raises(ParamError, match="k should be"):
        c.hybrid_search("h", [one], RRFRanker(0), limit=3)
    with pytest.raises(ParamError, match="same number of query vectors"):
        c.hybrid_search("h", [one, AnnSearchRequest(qb[:1].tolist(), "b", {}, 5)],
                        RRFRanker(), limit=3)
    with pytest.raises(ParamError, match="strategy"):
        c.hybrid_search("h", [one], {"strategy": "decay", "params": {}}, limit=3)
    with pytest.raises(ParamError, match="limit"):
        c.hybrid_search("h", [one], RRFRanker(), limit=0)
    with pytest.raises(ParamError):
        c.hybrid_search("h", [], RRFRanker(), limit=3)
    c.release_collection("h")
    with pytest.raises(Exception) as e:
        c.hybrid_search("h", [one], RRFRanker(), limit=3)
    assert e.value.code == 101

"""INT8_VECTOR: stored and resident at one byte per dimension, searched exactly (FLAT and
IVF_FLAT, every metric) with the same kernels as float vectors (they widen each block to
float32, which holds int8 products exactly), refused outside -128..127, never wrapped."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import kernels
from engine import DataType, MilvusClient
from engine.errors import DataError, ParamError

DIM = 16


def _coll(c: MilvusClient, index: str = "FLAT", metric: str = "L2", **params) -> np.ndarray:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.INT8_VECTOR, dim=DIM)
    p = c.prepare_index_params()
    p.add_index("v", index, metric_type=metric, params=params)
    c.create_collection("c", schema=s, index_params=p)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(500, DIM), dtype=np.int8)
    c.insert("c", {"id": np.arange(500), "v": x})
    return x


def _exact(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> list[int]:
    xf, qf = x.astype(np.float64), q.astype(np.float64)
    if metric == "L2":
        d = ((xf - qf) ** 2).sum(1)
    elif metric == "IP":
        d = -(xf @ qf)
    else:
        d = -(xf @ qf) / np.linalg.norm(xf, axis=1) / np.linalg.norm(qf)
    return np.argsort(d, kind="stable")[:k].tolist()


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_flat_is_exact_and_resident_at_one_byte(cpu_client, metric):
    x = _coll(cpu_client, metric=metric)
    q = np.array([5, -3] * (DIM // 2), dtype=np.int8)
    hits = cpu_client.search("c", [q.tolist()], limit=10)[0]
    assert [h["id"] for h in hits] == _exact(x, q, metric, 10)
    cpu_client.flush("c")
    cpu_client.release_collection("c")
    cpu_client.load_collection("c")
    assert cpu_client.memory_info("c")["parts"]["v"] == 500 * DIM  # int8: one byte each
    got = cpu_client.query("c", "id == 7", output_fields=["v"])[0]["v"]
    assert got == x[7].tolist()


def test_ivf(cpu_client):
    x = _coll(cpu_client, "IVF_FLAT", "L2", nlist=4)
    cpu_client.flush("c")
    q = x[3].astype(np.int64)
    hits = cpu_client.search("c", [q.tolist()], limit=5, search_params={"params": {"nprobe": 4}})
    assert [h["id"] for h in hits[0]] == _exact(x, q, "L2", 5)


def test_out_of_range_is_refused_not_wrapped(cpu_client):
    _coll(cpu_client)
    with pytest.raises(DataError, match="-128 to 127"):
        cpu_client.insert("c", [{"id": 1000, "v": [200] + [0] * (DIM - 1)}])
    with pytest.raises(DataError, match="integers"):
        cpu_client.insert("c", [{"id": 1000, "v": [0.5] + [0] * (DIM - 1)}])
    with pytest.raises(ParamError, match="-128 to 127"):
        cpu_client.search("c", [[300] * DIM], limit=1)
    assert cpu_client.get_collection_stats("c")["row_count"] == 500


def test_kernel_on_int8_matches_float_twin():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-128, 128, (300, DIM), generator=g, dtype=torch.int8)
    q = torch.randint(-128, 128, (4, DIM), generator=g).float()
    for metric in ("L2", "IP", "COSINE"):
        d8, i8 = kernels.flat_search(q, x, 7, metric)
        df, i_f = kernels.flat_search(q, x.float(), 7, metric)
        assert torch.equal(i8, i_f) and torch.equal(d8, df)

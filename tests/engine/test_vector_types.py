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


# -- BINARY_VECTOR ------------------------------------------------------------------------
def _bits(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n, dim), dtype=np.uint8)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_kernel_matches_its_popcount_twin(metric):
    from kernels import ref
    from kernels.binary import binary_distance

    x = torch.from_numpy(np.packbits(_bits(70, 40, 1), axis=1))
    q = torch.from_numpy(np.packbits(_bits(5, 40, 2), axis=1))
    x[0] = 0  # an empty row: JACCARD with anything empty is defined
    q[0] = 0
    assert torch.equal(binary_distance(q, x, metric), ref.binary_distance(q, x, metric))
    d, i = kernels.binary_flat_search(q, x, 9, metric, chunk=16)  # across chunks
    full = ref.binary_distance(q, x, metric)
    assert torch.equal(d, torch.sort(full, dim=1).values[:, :9])
    assert torch.equal(torch.gather(full, 1, i), d)


def _bin_coll(c: MilvusClient, metric: str) -> np.ndarray:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.BINARY_VECTOR, dim=32)
    p = c.prepare_index_params()
    p.add_index("v", "BIN_FLAT", metric_type=metric)
    c.create_collection("b", schema=s, index_params=p)
    bits = _bits(300, 32)
    packed = np.packbits(bits, axis=1)
    c.insert("b", [{"id": i, "v": row.tobytes()} for i, row in enumerate(packed)])
    return bits


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_search_is_exact_and_persists(cpu_client, metric):
    c = cpu_client
    bits = _bin_coll(c, metric)
    q = bits[7]
    inter = (bits & q).sum(1)
    if metric == "HAMMING":
        want = (bits ^ q).sum(1).astype(float)
    else:
        union = (bits | q).sum(1)
        want = np.where(union > 0, 1 - inter / np.maximum(union, 1), 0.0)
    hits = c.search("b", [np.packbits(q).tobytes()], limit=8, output_fields=["v"])[0]
    assert hits[0]["id"] == 7 and hits[0]["distance"] == 0
    assert np.allclose([h["distance"] for h in hits], np.sort(want)[:8])
    assert hits[0]["entity"]["v"] == np.packbits(q).tobytes()
    c.flush("b")
    c.release_collection("b")
    c.load_collection("b")
    assert c.memory_info("b")["parts"]["v"] == 300 * 4  # 32 bits: 4 bytes a row
    again = c.search("b", [np.packbits(q)], limit=8)[0]  # a uint8 array works too
    assert [h["id"] for h in again] == [h["id"] for h in hits]


def test_binary_refusals(cpu_client):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    with pytest.raises(ParamError, match="multiple of 8"):
        s.add_field("v", DataType.BINARY_VECTOR, dim=12)
    _bin_coll(c, "HAMMING")
    with pytest.raises(DataError, match="4 bytes"):
        c.insert("b", [{"id": 1000, "v": b"\x01\x02"}])
    with pytest.raises(ParamError, match="binary vectors must be bytes"):
        c.search("b", [[0.5, 1.0]], limit=1)
    c.release_collection("b")
    c.drop_index("b", "v")
    for itype, metric, match in (("IVF_FLAT", "HAMMING", "not supported on BINARY_VECTOR"),
                                 ("BIN_FLAT", "L2", "metric type L2 is not supported"),
                                 ("BIN_IVF_FLAT", "IP", "metric type IP is not supported")):
        p = c.prepare_index_params()
        p.add_index("v", itype, metric_type=metric)
        with pytest.raises(ParamError, match=match):
            c.create_index("b", p)
    p = c.prepare_index_params()
    p.add_index("v", "AUTOINDEX", metric_type="JACCARD")
    c.create_index("b", p)
    assert c.describe_index("b", "v")["metric_type"] == "JACCARD"


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
@pytest.mark.parametrize("nprobe", [1, 3, 8])
def test_binary_ivf_kernel_matches_its_twin(metric, nprobe):
    from kernels import ref

    x = torch.from_numpy(np.packbits(_bits(400, 48, 5), axis=1))
    q = torch.from_numpy(np.packbits(_bits(30, 48, 6), axis=1))
    cent = kernels.binary_kmeans(x, 8)
    lab = kernels.binary_assign(x, cent, metric)
    order = torch.argsort(lab, stable=True)
    x = x[order]
    offsets = torch.zeros(9, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(lab, minlength=8), 0)
    probes = kernels.binary_probe(q, cent, nprobe, metric)
    probes[0] = probes[0, :1]  # a query probing one list nprobe times
    mask = torch.rand(400, generator=torch.Generator().manual_seed(7)) > 0.3
    for k in (1, 10, 500):
        d, i = kernels.binary_ivf_search(q, x, offsets, probes, k, metric, mask)
        rd, ri = ref.binary_ivf_search(q, x, offsets, probes, k, metric, mask)
        assert torch.equal(d, rd)  # counts are exact: ties aside, the same answer
        full = ref.binary_distance(q, x, metric)
        ok = i >= 0
        assert torch.equal(torch.gather(full, 1, i.clamp_min(0))[ok], d[ok])
        assert bool(mask[i[ok]].all())


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_bin_ivf_flat_recall_persistence_deletes_and_filters(cpu_client, metric):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tag", DataType.INT64)
    s.add_field("v", DataType.BINARY_VECTOR, dim=64)
    p = c.prepare_index_params()
    p.add_index("v", "BIN_IVF_FLAT", metric_type=metric, params={"nlist": 16})
    c.create_collection("bi", schema=s, index_params=p)
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (16, 64))
    bits = (centres[rng.integers(0, 16, 3000)] ^ (rng.random((3000, 64)) < 0.08)).astype(
        np.uint8)
    packed = np.packbits(bits, axis=1)
    c.insert("bi", {"id": np.arange(3000), "tag": np.arange(3000) % 2, "v": packed})
    c.flush("bi")
    c.delete("bi", filter="id < 100")
    c.load_collection("bi")
    parts = c.memory_info("bi")["parts"]
    assert parts["v/centroids"] == 16 * 8 and "v/list_offsets" in parts
    q = packed[100:150]
    params = {"params": {"nprobe": 4}}
    hits = c.search("bi", q, limit=10, search_params=params, filter="tag == 0")
    x = torch.from_numpy(packed)
    from kernels import ref
    full = ref.binary_distance(torch.from_numpy(q), x, metric).numpy()
    found = 0
    for qi, per in enumerate(hits):
        live = (np.arange(3000) >= 100) & (np.arange(3000) % 2 == 0)
        d = np.where(live, full[qi], np.inf)
        kth = np.sort(d)[9]
        assert all(h["id"] >= 100 and h["id"] % 2 == 0 for h in per)
        assert all(abs(h["distance"] - full[qi][h["id"]]) < 1e-6 for h in per)
        found += sum(d[h["id"]] <= kth for h in per)
    assert found / 500 >= 0.95  # clustered data, 4 of 16 lists probed
    c.release_collection("bi")
    c.load_collection("bi")
    assert c.search("bi", q, limit=10, search_params=params, filter="tag == 0") == hits


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_binary_and_int8_kernels_on_cuda_match_the_cpu_twin():
    from kernels import ref
    from kernels.binary import binary_distance

    x = torch.from_numpy(np.packbits(_bits(500, 64, 3), axis=1))
    q = torch.from_numpy(np.packbits(_bits(8, 64, 4), axis=1))
    for metric in ("HAMMING", "JACCARD"):
        assert torch.equal(binary_distance(q.cuda(), x.cuda(), metric).cpu(),
                           ref.binary_distance(q, x, metric))
    x8 = torch.randint(-128, 128, (500, DIM), dtype=torch.int8)
    q8 = torch.randint(-128, 128, (8, DIM)).float()
    d, i = kernels.flat_search(q8.cuda(), x8.cuda(), 10, "L2")
    dr, ir = kernels.flat_search(q8, x8, 10, "L2")
    assert torch.equal(i.cpu(), ir) and torch.allclose(d.cpu(), dr)


# -- nullable vector fields ---------------------------------------------------------------
@pytest.mark.parametrize("index", ["FLAT", "IVF_FLAT"])
def test_nullable_vectors_are_never_hits(cpu_client, index):
    c = cpu_client
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4, nullable=True)
    p = c.prepare_index_params()
    p.add_index("v", index, metric_type="L2", params={"nlist": 4} if index == "IVF_FLAT" else {})
    c.create_collection("n", schema=s, index_params=p)
    rng = np.random.default_rng(0)
    rows = [{"id": i, "v": None if i % 3 == 0 else rng.random(4).tolist()} for i in range(300)]
    c.insert("n", rows[:200])
    c.flush("n")  # IVF trains on the non-null rows only
    c.insert("n", rows[200:] + [{"id": 999}])  # a missing vector is null too
    q = [[0.0] * 4]  # the null rows' stored zeros would be nearest if they were scanned
    for _ in range(2):
        hits = c.search("n", q, limit=300, search_params={"params": {"nprobe": 4}})[0]
        assert len(hits) == 200 and all(h["id"] % 3 for h in hits)
        got = {r["id"]: r["v"] for r in c.query("n", "id in [0, 1, 999]", output_fields=["v"])}
        assert got[0] is None and got[999] is None and got[1] == pytest.approx(rows[1]["v"])
        c.release_collection("n")
        c.load_collection("n")
    with pytest.raises(ParamError, match="default value"):
        s.add_field("w", DataType.FLOAT_VECTOR, dim=4, nullable=True, default_value=[0] * 4)

"""IVF_FLAT end to end: list-ordered segments, index parts in memory_info, FLAT equality at
nprobe = nlist, masks inside the scan, durability, recall on manifold data."""
import numpy as np
import pytest
import torch

from bench.datasets import manifold
from engine import DataType, MilvusClient
from engine.errors import MilvusException
from engine.index import ivf, registry
from engine.storage.segments import read_tensor
from kernels import ref

from ...conftest import basic_rows, basic_schema, index_params, reindex


def _ivf_params(metric="L2", nlist=16, field="vec"):
    p = MilvusClient.prepare_index_params()
    p.add_index(field, "IVF_FLAT", metric_type=metric, params={"nlist": nlist})
    return p


def _flat_ids(client, name, q, k, metric, **kw):
    return [[h["id"] for h in hits] for hits in client.search(name, q, limit=k, **kw)]


@pytest.fixture
def ivf_coll(client):
    client.create_collection("c", schema=basic_schema(dim=8))
    for s in range(0, 600, 200):
        client.insert("c", basic_rows(200, start=s, seed=s))
        client.flush("c")
    client.create_index("c", _ivf_params())
    return client


def test_segments_are_rewritten_in_list_order(ivf_coll):
    c = ivf_coll
    coll = c._db.collections["c"]
    cent = coll.trained["vec"]["centroids"]
    assert cent.shape == (16, 8)
    assert len(coll.sealed) == 3
    for seg in coll.sealed:
        assert seg.layout_field == "vec"
        v = read_tensor(coll.segment_dir(seg.id), coll.stems["vec"])
        lab = ref.assign(v, cent, "L2")
        assert bool((lab[1:] >= lab[:-1]).all())  # sorted by list
        assert seg.layout["offsets"][-1] == seg.num_rows
        assert torch.equal(torch.bincount(lab, minlength=16), seg.layout["offsets"].diff())
    assert c.get_collection_stats("c") == {"row_count": 600}
    assert c.describe_index("c", "vec")["index_type"] == "IVF_FLAT"
    assert c.describe_index("c", "vec")["nlist"] == 16


def test_index_parts_are_resident_and_counted(ivf_coll):
    c = ivf_coll
    c.load_collection("c")
    parts = c.memory_info("c")["parts"]
    assert parts["vec/centroids"] == 16 * 8 * 4
    assert parts["vec/centroid_norms"] == 16 * 4  # kept for the coarse probe
    assert parts["vec/list_offsets"] == 3 * 17 * 8
    assert parts["vec"] == 600 * 8 * 4  # the list-ordered vectors: no second copy
    c.release_collection("c")
    assert c.memory_info("c") == {"bytes": 0, "parts": {}}


def test_release_gives_back_every_index_byte(client):
    before = torch.cuda.memory_allocated() if client.device.type == "cuda" else 0
    client.create_collection("c", schema=basic_schema(dim=8))
    client.insert("c", basic_rows(300))
    client.create_index("c", _ivf_params(nlist=8))
    client.load_collection("c")
    client.search("c", [[0.0] * 8], limit=5, search_params={"params": {"nprobe": 2}})
    assert client.memory_info("c")["parts"]["vec/norms"] == 300 * 4
    res = client._db.residency.get("c")
    client.release_collection("c")
    assert not res.index_parts and not res.segments
    if client.device.type == "cuda":
        assert torch.cuda.memory_allocated() == before


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_nprobe_nlist_equals_flat(client, metric):
    rows = basic_rows(500, seed=4)
    for name, params in (("flat", None), ("ivf", _ivf_params(metric))):
        client.create_collection(name, schema=basic_schema(dim=8))
        client.insert(name, rows[:300])
        client.flush(name)
        if params is None:
            p = MilvusClient.prepare_index_params()
            p.add_index("vec", "FLAT", metric_type=metric)
            client.create_index(name, p)
        else:
            client.create_index(name, params)
        client.load_collection(name)
        client.insert(name, rows[300:])  # growing rows, scanned exactly
    q = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    flat = client.search("flat", q, limit=12, output_fields=["age"])
    full = client.search("ivf", q, limit=12, output_fields=["age"],
                         search_params={"params": {"nprobe": 16}})
    assert [[h["id"] for h in x] for x in flat] == [[h["id"] for h in x] for x in full]
    for a, b in zip(flat, full):
        assert [h["distance"] for h in a] == pytest.approx([h["distance"] for h in b], rel=1e-5)
    few = client.search("ivf", q, limit=12, search_params={"params": {"nprobe": 1}})
    assert all(len(x) == 12 for x in few)


def test_deleted_and_filtered_rows_never_returned(ivf_coll):
    c = ivf_coll
    c.load_collection("c")
    c.delete("c", ids=list(range(0, 600, 2)))
    q = np.random.default_rng(2).standard_normal((5, 8)).astype(np.float32)
    for hits in c.search("c", q, limit=50, filter="age < 30", output_fields=["age"],
                         search_params={"params": {"nprobe": 4}}):
        assert hits and all(h["id"] % 2 == 1 and h["entity"]["age"] < 30 for h in hits)


def test_results_identical_after_flush_reopen_load(tmp_path, device):
    path = str(tmp_path / "d")
    c = MilvusClient(path, device=device)
    c.create_collection("c", schema=basic_schema(dim=8), index_params=_ivf_params(nlist=8))
    c.insert("c", basic_rows(400, seed=7))  # trains at the first flush (>= nlist rows)
    c.flush("c")
    coll = c._db.collections["c"]
    assert "vec" in coll.trained and coll.sealed[0].layout_field == "vec"
    assert "vec/list_offsets" in c.memory_info("c")["parts"]  # sealed while loaded
    c.insert("c", basic_rows(50, start=1000, seed=8))
    c.delete("c", ids=[3, 1001])
    c.flush("c")  # sealed while loaded: list-ordered on disk and on the device
    q = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    params = {"params": {"nprobe": 3}}
    before = c.search("c", q, limit=10, search_params=params)
    c.close()
    c = MilvusClient(path, device=device)
    c.release_collection("c")
    c.load_collection("c")
    assert c.search("c", q, limit=10, search_params=params) == before
    c.close()


def test_range_search(client):
    client.create_collection("c", schema=basic_schema(dim=8))
    client.insert("c", basic_rows(300, seed=9))
    client.create_index("c", _ivf_params(nlist=4))
    client.load_collection("c")
    q = [basic_rows(1, seed=9)[0]["vec"]]
    hits = client.search("c", q, limit=100, search_params={
        "params": {"nprobe": 4, "radius": 10.0, "range_filter": 2.0}})[0]
    assert hits and all(2.0 <= h["distance"] < 10.0 for h in hits)
    with pytest.raises(MilvusException, match="range_filter"):
        client.search("c", q, search_params={"params": {"radius": 1.0, "range_filter": 5.0}})


def test_ip_range_search(client):
    client.create_collection("c", schema=basic_schema(dim=8))
    client.insert("c", basic_rows(200, seed=9))
    client.create_index("c", _ivf_params("IP", nlist=4))
    client.load_collection("c")
    q = [basic_rows(1, seed=9)[0]["vec"]]
    hits = client.search("c", q, limit=100, search_params={
        "params": {"nprobe": 4, "radius": 0.5, "range_filter": 3.0}})[0]
    assert hits and all(0.5 < h["distance"] <= 3.0 for h in hits)


def test_ivf_errors(client):
    client.create_collection("c", schema=basic_schema(dim=8))
    client.insert("c", basic_rows(50))
    client.create_index("c", _ivf_params(nlist=4))
    client.load_collection("c")
    with pytest.raises(MilvusException, match="nprobe"):
        client.search("c", [[0.0] * 8], search_params={"params": {"nprobe": 0}})
    bad = MilvusClient.prepare_index_params()
    bad.add_index("vec", "IVF_FLAT", metric_type="L2", params={"nlist": 0})
    with pytest.raises(MilvusException, match="nlist"):
        client.create_index("c", bad)
    s = basic_schema(dim=8)
    s.add_field("vec2", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("two", schema=s)
    with pytest.raises(MilvusException, match="at most one IVF"):
        client.create_index("two", _two_ivf())
    client.create_collection("loaded", schema=basic_schema(dim=8), index_params=_flat())
    with pytest.raises(MilvusException, match="at most one distinct index"):
        client.create_index("loaded", _ivf_params())


def _two_ivf():
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", "IVF_FLAT", metric_type="L2", params={"nlist": 4})
    p.add_index("vec2", "IVF_FLAT", metric_type="L2", params={"nlist": 4})
    return p


def _flat():
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", "FLAT", metric_type="L2")
    return p


def test_ivf_on_loaded_collection_asks_for_release(client):
    s = basic_schema(dim=8)
    s.add_field("vec2", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("c", schema=s)
    p = MilvusClient.prepare_index_params()
    p.add_index("vec2", "FLAT", metric_type="L2")
    client.create_index("c", p)
    client.insert("c", [{**r, "vec2": [0.0, 1.0, 2.0, 3.0]} for r in basic_rows(40)])
    client.load_collection("c", load_fields=["id", "vec2"])
    with pytest.raises(MilvusException) as e:
        client.create_index("c", _ivf_params(nlist=4))
    assert e.value.code == 65535 and "release it first" in e.value.message
    assert client.list_indexes("c") == ["vec2"]  # nothing changed
    client.release_collection("c")
    client.create_index("c", _ivf_params(nlist=4))
    assert all(seg.layout_field == "vec" for seg in client._db.collections["c"].sealed)


def test_autoindex_picks_by_size(client, monkeypatch):
    client.create_collection("small", schema=basic_schema(dim=8))
    client.insert("small", basic_rows(100))
    auto = MilvusClient.prepare_index_params()
    auto.add_index("vec", "AUTOINDEX", metric_type="L2")
    client.create_index("small", auto)
    assert client._db.collections["small"].layout_index() is None
    monkeypatch.setattr(registry, "AUTO_IVF_MIN_ROWS", 100)
    monkeypatch.setattr(registry, "AUTO_PARAMS", {"nlist": 8, "nprobe": 32})
    client.create_collection("big", schema=basic_schema(dim=8))
    client.insert("big", basic_rows(200))
    client.create_index("big", auto)
    entry, _ = client._db.collections["big"].layout_index()
    assert entry["engine_params"]["nlist"] == 8 and "vec" in client._db.collections["big"].trained
    assert client.describe_index("big", "vec")["index_type"] == "AUTOINDEX"


def test_recall_at_nprobe_32_of_1024_on_manifold(tmp_path):
    data, queries = manifold(100_000, 200, dim=128)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=128)
    c.create_collection("m", schema=s)
    c.insert("m", {"id": np.arange(100_000), "vec": data})
    c.create_index("m", _ivf_params(nlist=1024))
    c.load_collection("m")
    found = [[h["id"] for h in hits] for hits in c.search(
        "m", queries, limit=10, search_params={"params": {"nprobe": 32}})]
    truth = ref.flat_search(torch.from_numpy(queries), torch.from_numpy(data), 10, "L2")[1]
    recall = np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9, recall
    c.close()


def test_limit_16384_and_range_on_flat(client):
    client.create_collection("c", schema=basic_schema(dim=8), index_params=_flat())
    client.insert("c", basic_rows(700, seed=11))
    hits = client.search("c", [[0.0] * 8], limit=16384)[0]
    assert len(hits) == 700  # every row, best first
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    client.release_collection("c")
    client.drop_index("c", "vec")
    client.create_index("c", _ivf_params(nlist=8))
    client.load_collection("c")
    hits = client.search("c", [[0.0] * 8], limit=16384,
                         search_params={"params": {"nprobe": 8}})[0]
    assert len(hits) == 700
    ranged = client.search("c", [[0.0] * 8], limit=16384,
                           search_params={"params": {"nprobe": 8, "radius": 6.0,
                                                     "range_filter": 4.0}})[0]
    assert ranged and all(4.0 <= h["distance"] < 6.0 for h in ranged)
    assert len(ranged) == sum(1 for h in hits if 4.0 <= h["distance"] < 6.0)


def test_an_ivf_load_leaves_no_stale_reservation(cpu_client):
    """used_bytes is exactly the resident parts once an IVF load is done (the loop over
    trained centroids rebound the collection's name, so its reservation was never
    returned), and 0 after release."""
    c = cpu_client
    c.create_collection("v", schema=basic_schema(dim=8), index_params=index_params())
    c.insert("v", basic_rows(400, dim=8))
    c.flush("v")
    c.release_collection("v")
    reindex(c, "v", nlist=4)
    c.load_collection("v")
    info = c.memory_info()
    assert info["used_bytes"] == sum(v["bytes"] for v in info["collections"].values()) > 0
    c.release_collection("v")
    assert c.memory_info()["used_bytes"] == 0


def test_drop_index_then_create_ivf_again_rebuilds_every_segment(cpu_client):
    """Dropping an IVF index forgets the list order of the segments it wrote, so a new
    IVF index (a new nlist too) lays every segment out again: self-hits at nprobe 1 are
    exact (they were 0.04 when the old order was kept with new centroids)."""
    c = cpu_client
    c.create_collection("v", schema=basic_schema(dim=8), index_params=index_params())
    rows = basic_rows(600, dim=8, seed=3)
    c.insert("v", rows)
    c.flush("v")
    c.release_collection("v")
    for nlist in (4, 16):
        reindex(c, "v", nlist=nlist)
        c.load_collection("v")
        hits = c.search("v", [r["vec"] for r in rows[:100]], limit=1,
                        search_params={"params": {"nprobe": 1}})
        assert sum(h[0]["id"] == i for i, h in enumerate(hits)) == 100, nlist
        c.release_collection("v")

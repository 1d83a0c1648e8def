"""Milvus's client-level behaviour through pymilvus against a server, one test per point
that is not covered by test_grpc.py, test_security.py, test_grpc_fields.py, test_compat.py
or tests/ecosystem/: integer filter arithmetic, upsert across partitions and into auto_id,
ignore_growing, Milvus's wording, the 1100 cases of limits and filters, and an unnamed
index dropped by its field's name."""
import pytest

pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")

from pymilvus import DataType, MilvusClient, MilvusException  # noqa: E402

from .harness import Server  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("fidelity") / "data")
    c = MilvusClient(uri=s.url)
    yield c
    c.close()
    s.stop()


def _code(fn) -> tuple[int, str]:
    with pytest.raises(MilvusException) as e:
        fn()
    return e.value.code, e.value.message


def _small(c, name, auto_id=False, **fields):
    s = MilvusClient.create_schema(auto_id=auto_id)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    for f, t in fields.items():
        s.add_field(f, t, **({"max_length": 16} if t == DataType.VARCHAR else {}))
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")  # no index_name: named after its field
    c.create_collection(name, schema=s, index_params=p)


def test_integer_filter_arithmetic_is_done_in_int64(client):
    _small(client, "ints", i8=DataType.INT8)
    client.insert("ints", [{"id": i, "v": [0.0, 1.0], "i8": i - 128} for i in range(256)])
    # 127 + 1 overflows an int8: Milvus promotes to int64, so only -128 + 1 <= 0 fails
    assert client.query("ints", "i8 + 1 > 0", output_fields=["count(*)"])[0]["count(*)"] == 128
    assert client.query("ints", "i8 * 2 >= 254", output_fields=["count(*)"])[0]["count(*)"] == 1
    code, msg = _code(lambda: client.query("ints", "i8 / 0 > 1"))
    assert code == 1100 and "zero" in msg


def test_upsert_replaces_the_key_in_every_partition_and_auto_id_gets_new_keys(client):
    _small(client, "ups", tag=DataType.INT64)
    client.create_partition("ups", "p1")
    client.insert("ups", [{"id": 1, "v": [0.0, 0.0], "tag": 1}], partition_name="p1")
    client.upsert("ups", [{"id": 1, "v": [1.0, 1.0], "tag": 2}])  # into _default
    got = client.query("ups", "id == 1", output_fields=["tag"])
    assert [r["tag"] for r in got] == [2]  # the p1 row is gone, as in Milvus
    assert client.query("ups", "id == 1", output_fields=["tag"],
                        partition_names=["p1"]) == []
    _small(client, "auto", auto_id=True, tag=DataType.INT64)
    first = client.insert("auto", [{"v": [0.0, 0.0], "tag": 1}])["ids"][0]
    new = client.upsert("auto", [{"id": first, "v": [1.0, 1.0], "tag": 2}])["ids"][0]
    assert new != first
    rows = client.query("auto", "tag >= 0", output_fields=["tag"])
    assert [(r["id"], r["tag"]) for r in rows] == [(new, 2)]


def test_ignore_growing_skips_unsealed_rows(client):
    _small(client, "grow")
    client.insert("grow", [{"id": 1, "v": [0.0, 0.0]}])
    client.flush("grow")
    client.insert("grow", [{"id": 2, "v": [0.0, 0.1]}])
    hits = client.search("grow", [[0.0, 0.0]], limit=5, search_params={"ignore_growing": True})
    assert [h["id"] for h in hits[0]] == [1]
    assert len(client.search("grow", [[0.0, 0.0]], limit=5)[0]) == 2
    got = client.query("grow", "id >= 0", ignore_growing=True)
    assert [r["id"] for r in got] == [1]


def test_errors_milvus_code_matches_on(client):
    code, msg = _code(lambda: client.describe_collection("nope"))
    assert code == 100 and "collection not found[database=default][collection=nope]" in msg
    code, msg = _code(lambda: client.release_collection("12-s"))
    assert code == 1100 and "Invalid collection name: 12-s" in msg
    _small(client, "lim", s=DataType.VARCHAR)
    client.insert("lim", [{"id": 1, "v": [0.0, 0.0], "s": "a"}])
    code, _ = _code(lambda: client.search("lim", [[0.0, 0.0]], limit=16384, offset=1))
    assert code == 1100
    code, _ = _code(lambda: client.query("lim", "id >= 0", limit=16384, offset=1))
    assert code == 1100
    code, msg = _code(lambda: client.query("lim", "id >= 0", limit=-1))
    assert code == 1100
    code, msg = _code(lambda: client.query("lim", 's like "a\\\\"'))
    assert code == 1100 and "escape" in msg


def test_an_unnamed_index_is_dropped_by_its_field_name(client):
    _small(client, "named")
    client.release_collection("named")
    assert client.list_indexes("named") == ["v"]
    client.drop_index("named", "v")
    assert client.list_indexes("named") == []


def test_aliases_through_pymilvus(client):
    """Aliases as pymilvus uses them: persisted in the catalog, resolved by the engine once,
    with Milvus's codes for the refusals."""
    _small(client, "al_v1")
    _small(client, "al_v2")
    client.insert("al_v1", [{"id": 1, "v": [0.0, 0.0]}])
    client.create_alias("al_v1", "al")
    assert client.describe_collection("al")["collection_name"] == "al_v1"
    assert [r["id"] for r in client.query("al", "id >= 0")] == [1]
    assert _code(lambda: client.create_alias("al_v2", "al"))[0] == 1602
    assert _code(lambda: client.create_alias("al_v2", "al_v1"))[0] == 1601
    client.alter_alias("al_v2", "al")
    assert client.query("al", "id >= 0") == []
    assert client.list_aliases("al_v2")["aliases"] == ["al"]
    code, msg = _code(lambda: client.drop_collection("al_v2"))
    assert "associated aliases" in msg
    client.drop_alias("al")
    assert _code(lambda: client.describe_alias("al"))[0] == 1600
    client.drop_collection("al_v2")
    assert not client.has_collection("al_v2")


def test_hybrid_search_through_pymilvus(client):
    """HybridSearch over two vector fields, fused by the engine; what it does not do
    (grouping, options inside a sub-search) is refused, not ignored."""
    from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=2)
    p = MilvusClient.prepare_index_params()
    p.add_index("a", "FLAT", metric_type="L2")
    p.add_index("b", "FLAT", metric_type="IP")
    client.create_collection("hyb", schema=s, index_params=p)
    client.insert("hyb", [{"id": i, "a": [float(i), 0.0], "b": [0.0, float(i)]}
                          for i in range(10)])
    reqs = [AnnSearchRequest([[3.0, 0.0]], "a", {"metric_type": "L2"}, 3),  # 3, 2|4
            AnnSearchRequest([[0.0, 1.0]], "b", {"metric_type": "IP"}, 3)]  # 9, 8, 7
    hits = client.hybrid_search("hyb", reqs, RRFRanker(10), limit=2)[0]
    assert [h["id"] for h in hits] == [3, 9] and hits[0]["distance"] == pytest.approx(1 / 11)
    hits = client.hybrid_search("hyb", reqs, WeightedRanker(1.0, 0.0), limit=1)[0]
    assert hits[0]["id"] == 3 and hits[0]["distance"] == pytest.approx(1.0)
    code, msg = _code(lambda: client.hybrid_search("hyb", reqs, RRFRanker(), limit=2,
                                                   group_by_field="id"))
    assert code == 1100 and "group_by_field" in msg
    code, msg = _code(lambda: client.hybrid_search("hyb", reqs, WeightedRanker(0.5), limit=2))
    assert code == 1100 and "weights" in msg


def test_compaction_through_pymilvus(client):
    _small(client, "cmp", tag=DataType.INT64)
    for i in range(3):
        client.insert("cmp", [{"id": 10 * i + j, "v": [float(j), 0.0], "tag": j}
                              for j in range(10)])
        client.flush("cmp")
    client.delete("cmp", filter="tag < 5")
    job = client.compact("cmp")
    assert client.get_compaction_state(job) == "Completed"
    assert client.query("cmp", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 15
    code, msg = _code(lambda: client.compact("cmp", is_clustering=True))
    assert code == 1100 and "clustering" in msg


def test_scalar_and_json_path_indexes(client):
    s = MilvusClient.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("title", DataType.VARCHAR, max_length=16)
    s.add_field("meta", DataType.JSON)
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    p.add_index("title", "TRIE", index_name="title_trie")
    p.add_index("meta", "INVERTED", params={"json_path": 'meta["k"]["n"]',
                                             "json_cast_type": "double"})
    p.add_index("meta", "AUTOINDEX", index_name="tags",
                params={"json_path": 'meta["tags"]', "json_cast_type": "array_varchar"})
    client.create_collection("sx", schema=s, index_params=p)
    client.insert("sx", [{"id": i, "v": [i, 0], "title": f"t{i}", "meta": {
        "k": {"n": i}, "tags": ["x" if i % 2 else "y"]}} for i in range(20)])
    client.flush("sx")
    client.release_collection("sx")
    client.load_collection("sx")
    assert client.list_indexes("sx") == ["v", "title_trie", "meta/k/n", "tags"]
    d = client.describe_index("sx", "meta/k/n")
    assert d["index_type"] == "INVERTED" and d["json_cast_type"] == "DOUBLE"
    assert d["json_path"] == 'meta["k"]["n"]'
    got = client.query("sx", "meta['k']['n'] >= 15 and title like 't1%' and "
                             "json_contains(meta['tags'], 'x')", output_fields=["id"])
    assert sorted(r["id"] for r in got) == [15, 17, 19]
    p = MilvusClient.prepare_index_params()
    p.add_index("title", "BITMAP", index_name="t2")
    code, msg = _code(lambda: client.create_index("sx", p))
    assert code == 65535 and "at most one distinct index" in msg
    p = MilvusClient.prepare_index_params()
    p.add_index("id", "BITMAP", index_name="pk_bitmap")
    code, msg = _code(lambda: client.create_index("sx", p))
    assert code == 1100 and "primary key" in msg


def test_databases(client):
    client.create_database("fdb", properties={"database.max.collections": 2})
    assert "fdb" in client.list_databases()
    d = client.describe_database("fdb")
    assert d["name"] == "fdb" and d["database.max.collections"] == "2"
    client.use_database("fdb")
    _small(client, "same")
    client.insert("same", [{"id": i, "v": [i, 0]} for i in range(3)])
    client.use_database("default")
    _small(client, "same")
    assert client.query("same", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0
    client.use_database("fdb")
    assert client.query("same", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 3
    code, msg = _code(lambda: _small(client, "third") or _small(client, "fourth"))
    assert "exceeded the limit number of collections" in msg
    client.alter_database_properties("fdb", {"database.force.deny.writing": True})
    code, msg = _code(lambda: client.insert("same", [{"id": 9, "v": [0, 0]}]))
    assert code == 9 and "deny writing" in msg
    client.drop_database_properties("fdb", ["database.force.deny.writing"])
    client.rename_collection("same", "moved", target_db="default")
    client.use_database("default")
    assert {"moved", "same"} <= set(client.list_collections())
    assert client.query("moved", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 3
    client.use_database("fdb")
    for name in client.list_collections():
        client.drop_collection(name)
    client.use_database("default")
    client.drop_database("fdb")
    assert "fdb" not in client.list_databases()
    code, msg = _code(lambda: client.use_database("fdb") or client.list_collections())
    assert code == 800
    client.use_database("default")


def test_add_field_properties_and_partition_stats(client):
    _small(client, "addf")
    client.insert("addf", [{"id": i, "v": [i, 0]} for i in range(4)])
    client.flush("addf")
    client.add_collection_field("addf", "price", DataType.DOUBLE, nullable=True,
                                default_value=1.5)
    client.add_collection_field("addf", "tag", DataType.VARCHAR, max_length=8, nullable=True)
    client.insert("addf", [{"id": 9, "v": [9, 0], "price": 4.0, "tag": "t"}])
    got = {r["id"]: (r["price"], r["tag"]) for r in client.query(
        "addf", "id >= 0", output_fields=["price", "tag"])}
    assert got == {0: (1.5, None), 1: (1.5, None), 2: (1.5, None), 3: (1.5, None),
                   9: (4.0, "t")}
    fields = {f["name"]: f for f in client.describe_collection("addf")["fields"]}
    dv = fields["price"]["default_value"]  # pymilvus hands back the proto ValueField
    assert fields["price"]["nullable"] and getattr(dv, "double_data", dv) == 1.5
    code, msg = _code(lambda: client.add_collection_field("addf", "x", DataType.INT64))
    assert code == 1100 and "nullable" in msg
    client.alter_collection_properties("addf", {"mmap.enabled": False})
    assert client.describe_collection("addf")["properties"] == {"mmap.enabled": "false"}
    code, msg = _code(lambda: client.alter_collection_properties(
        "addf", {"collection.ttl.seconds": 60}))
    assert code == 1100 and "expire" in msg
    client.drop_collection_properties("addf", ["mmap.enabled"])
    assert client.describe_collection("addf")["properties"] == {}
    assert client.get_partition_stats("addf", "_default") == {"row_count": 5}



def test_decay_and_boost_rerankers(client):
    import math

    from pymilvus import Function, FunctionScore, FunctionType

    _small(client, "rr", ts=DataType.INT64, kind=DataType.VARCHAR)
    client.insert("rr", [{"id": i, "v": [i / 10, 0], "ts": 100 - 10 * i, "kind": "ab"[i % 2]}
                         for i in range(10)])
    plain = client.search("rr", [[0, 0]], limit=10, output_fields=["ts", "kind"])[0]
    decay = Function(name="d", input_field_names=["ts"], function_type=FunctionType.RERANK,
                     params={"reranker": "decay", "function": "exp", "origin": 0,
                             "scale": 50, "decay": 0.5})
    boost = Function(name="b", input_field_names=[], function_type=FunctionType.RERANK,
                     params={"reranker": "boost", "filter": "kind == 'a'", "weight": 2.0})
    got = client.search("rr", [[0, 0]], limit=10,
                        ranker=FunctionScore([decay, boost]), output_fields=["kind"])[0]
    want = {h["id"]: (1 - 2 * math.atan(h["distance"]) / math.pi)
            * 0.5 ** (h["entity"]["ts"] / 50) * (2.0 if h["entity"]["kind"] == "a" else 1.0)
            for h in plain}
    assert [h["id"] for h in got] == sorted(want, key=lambda k: -want[k])
    assert all(math.isclose(h["distance"], want[h["id"]], rel_tol=1e-6) for h in got)


def test_int8_vectors(client):
    import numpy as np

    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.INT8_VECTOR, dim=4)
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="IP")
    client.create_collection("i8v", schema=s, index_params=p)
    rows = np.array([[1, 2, 3, 4], [-128, 127, 0, 5], [10, -10, 10, -10]], dtype=np.int8)
    client.insert("i8v", [{"id": i, "v": r} for i, r in enumerate(rows)])
    hits = client.search("i8v", [np.array([0, 1, 0, 0], dtype=np.int8)], limit=3,
                         output_fields=["v"])[0]
    assert [h["id"] for h in hits] == [1, 0, 2] and hits[0]["distance"] == 127
    v = hits[0]["entity"]["v"]  # pymilvus hands int8 vectors back as raw bytes
    v = v[0] if isinstance(v, list) and v and isinstance(v[0], bytes) else v
    got = (np.frombuffer(v, dtype=np.int8) if isinstance(v, bytes)
           else np.asarray(v, dtype=np.int8)).ravel().tolist()
    assert got == [-128, 127, 0, 5]
    code, msg = _code(lambda: client.insert("i8v", [{"id": 9, "v": [300, 0, 0, 0]}]))
    assert code != 0


def test_binary_vectors_and_varchar_auto_id(client):
    import numpy as np

    s = MilvusClient.create_schema(auto_id=True)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
    s.add_field("v", DataType.BINARY_VECTOR, dim=16)
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "BIN_FLAT", metric_type="HAMMING")
    client.create_collection("bin", schema=s, index_params=p)
    bits = np.array([[1] * 16, [0] * 16, [1, 0] * 8], dtype=np.uint8)
    ids = client.insert("bin", [{"v": np.packbits(b).tobytes()} for b in bits])["ids"]
    assert len(ids) == 3 and all(isinstance(k, str) for k in ids)
    hits = client.search("bin", [np.packbits([1] * 8 + [0] * 8).tobytes()], limit=3,
                         output_fields=["v"])[0]
    assert [h["distance"] for h in hits] == [8.0, 8.0, 8.0]
    top = client.search("bin", [np.packbits(bits[2]).tobytes()], limit=1,
                        output_fields=["v"])[0][0]
    assert top["pk"] == ids[2] and top["distance"] == 0
    v = top["entity"]["v"]
    v = v[0] if isinstance(v, list) else v
    assert bytes(v) == np.packbits(bits[2]).tobytes()


def test_nullable_vectors(client):
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2, nullable=True)
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    client.create_collection("nv", schema=s, index_params=p)
    client.insert("nv", [{"id": 1, "v": [0.0, 0.0]}, {"id": 2, "v": None},
                         {"id": 3, "v": [1.0, 0.0]}])
    hits = client.search("nv", [[0.0, 0.0]], limit=5)[0]
    assert [h["id"] for h in hits] == [1, 3]
    got = {r["id"]: r["v"] for r in client.query("nv", "id > 0", output_fields=["v"])}
    assert got[2] is None and list(got[3]) == [1.0, 0.0]


def test_decay_ranker_on_hybrid_search(client):
    import math

    from pymilvus import AnnSearchRequest, Function, FunctionType

    _small(client, "hd", ts=DataType.INT64)
    client.insert("hd", [{"id": i, "v": [i / 10, 1 - i / 10], "ts": 10 * i} for i in range(10)])
    decay = Function(name="d", input_field_names=["ts"], function_type=FunctionType.RERANK,
                     params={"reranker": "decay", "function": "linear", "origin": 0,
                             "scale": 50})
    reqs = [AnnSearchRequest([[0.0, 1.0]], "v", {}, 10), AnnSearchRequest([[1.0, 0.0]], "v",
                                                                         {}, 10)]
    got = client.hybrid_search("hd", reqs, decay, limit=3)[0]
    best = {}
    for q in ([0.0, 1.0], [1.0, 0.0]):
        for h in client.search("hd", [q], limit=10)[0]:
            r = 1 - 2 * math.atan(h["distance"]) / math.pi
            best[h["id"]] = max(best.get(h["id"], 0.0), r)
    want = {k: r * max((100 - 10 * k) / 100, 0.0) for k, r in best.items()}
    assert [h["id"] for h in got] == sorted(want, key=lambda k: -want[k])[:3]


def test_partition_key(client):
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=8, is_partition_key=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    p = MilvusClient.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    client.create_collection("pk_mode", schema=s, index_params=p)
    fields = {f["name"]: f for f in client.describe_collection("pk_mode")["fields"]}
    assert fields["tenant"].get("is_partition_key") is True
    code, msg = _code(lambda: client.create_partition("pk_mode", "p1"))
    assert code == 1100 and "partition key mode" in msg


def test_sparse_vectors_alone_and_in_hybrid_search(client):
    from pymilvus import AnnSearchRequest, RRFRanker

    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    p = MilvusClient.prepare_index_params()
    p.add_index("dense", "FLAT", metric_type="L2")
    p.add_index("sp", "SPARSE_INVERTED_INDEX", metric_type="IP",
                params={"drop_ratio_build": 0.0})
    client.create_collection("sparse", schema=s, index_params=p)
    rows = [{"id": 0, "dense": [0.0, 0.0], "sp": {1: 0.5, 70000: 2.0}},
            {"id": 1, "dense": [1.0, 0.0], "sp": [(1, 1.0), (3, 1.0)]},
            {"id": 2, "dense": [5.0, 5.0], "sp": {4_000_000_000: 1.0}},
            {"id": 3, "dense": [0.1, 0.0], "sp": {}}]
    client.insert("sparse", rows)
    hits = client.search("sparse", [{1: 1.0, 70000: 1.0}], anns_field="sp", limit=5,
                         output_fields=["sp"])[0]
    # row 3 (empty) and row 2 share no dimension with the query: no hits
    assert [(h["id"], h["distance"]) for h in hits] == [(0, 2.5), (1, 1.0)]
    assert hits[0]["entity"]["sp"] == {1: 0.5, 70000: 2.0}
    got = client.query("sparse", "id == 2", output_fields=["sp"])[0]["sp"]
    assert got == {4_000_000_000: 1.0}
    hits = client.search("sparse", [{4_000_000_000: 3.0}], anns_field="sp", limit=2)[0]
    assert [(h["id"], h["distance"]) for h in hits] == [(2, 3.0)]
    fused = client.hybrid_search("sparse", [
        AnnSearchRequest([[0.0, 0.0]], "dense", {"metric_type": "L2"}, limit=4),
        AnnSearchRequest([{3: 1.0}], "sp", {"metric_type": "IP"}, limit=4)],
        RRFRanker(60), limit=2)[0]
    # row 1 ranks 3rd by dense and 1st by sparse; row 0 1st by dense only
    assert [h["id"] for h in fused] == [1, 0]
    code, msg = _code(lambda: client.insert("sparse", [{"id": 9, "dense": [0.0, 0.0],
                                                         "sp": {1: -1.0}}]))
    assert code == 1100 and "non-negative" in msg
    code, msg = _code(lambda: client.search("sparse", [{1: 1.0}], anns_field="sp",
                                            search_params={"metric_type": "L2"}))
    assert code == 1100 and "metric type not match" in msg
    s2 = MilvusClient.create_schema()
    s2.add_field("id", DataType.INT64, is_primary=True)
    s2.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    p2 = MilvusClient.prepare_index_params()
    p2.add_index("sp", "SPARSE_INVERTED_INDEX", metric_type="BM25")
    code, msg = _code(lambda: client.create_collection("bm25", schema=s2, index_params=p2))
    assert code == 1100 and "BM25" in msg

"""pymilvus's MilvusClient, unchanged, against a real Hotset server process (gRPC and REST
on one port)."""
import numpy as np
import pytest

pymilvus = pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")
pytest.importorskip("httpx", reason="the server harness needs httpx")

from pymilvus import DataType, MilvusClient, MilvusException  # noqa: E402

from .harness import Server  # noqa: E402


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("grpc") / "data")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(srv):
    c = MilvusClient(uri=srv.url, token="root:Milvus")
    yield c
    c.close()


def test_load_and_release_page_verbatim(client, capsys):
    # 1. Create a collection (from the Milvus "Load & Release" page)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(field_name="my_id", datatype=DataType.INT64, is_primary=True)
    schema.add_field(field_name="my_vector", datatype=DataType.FLOAT_VECTOR, dim=5)
    schema.add_field(field_name="my_varchar", datatype=DataType.VARCHAR, max_length=512)
    client.create_collection(collection_name="customized_setup_1", schema=schema)
    index_params = MilvusClient.prepare_index_params()
    index_params.add_index(field_name="my_vector", index_type="AUTOINDEX", metric_type="L2")
    client.create_index(collection_name="customized_setup_1", index_params=index_params)
    # 2. Load
    client.load_collection(collection_name="customized_setup_1")
    res = client.get_load_state(collection_name="customized_setup_1")
    print(res)
    assert capsys.readouterr().out.strip() == "{'state': <LoadState: Loaded>}"
    # 3. Load specific fields
    client.release_collection(collection_name="customized_setup_1")
    client.load_collection(collection_name="customized_setup_1",
                           load_fields=["my_id", "my_vector"], skip_load_dynamic_field=True)
    res = client.get_load_state(collection_name="customized_setup_1")
    print(res)
    assert capsys.readouterr().out.strip() == "{'state': <LoadState: Loaded>}"
    # 4. Release
    client.release_collection(collection_name="customized_setup_1")
    res = client.get_load_state(collection_name="customized_setup_1")
    print(res)
    assert capsys.readouterr().out.strip() == "{'state': <LoadState: NotLoad>}"


@pytest.fixture(scope="module")
def docs(client):
    client.create_collection("docs", dimension=5, metric_type="L2")
    rows = [{"id": i, "vector": [float(i), 0, 1, 2, 3], "title": f"t{i % 4}", "n": i}
            for i in range(50)]
    assert client.insert("docs", rows)["insert_count"] == 50
    return rows


def test_search_query_get_with_filters_and_outputs(client, docs):
    hits = client.search("docs", [[3.0, 0, 1, 2, 3]], limit=3, output_fields=["title"],
                         filter="n >= 3")
    assert [h["id"] for h in hits[0]] == [3, 4, 5]
    assert hits[0][0]["distance"] == pytest.approx(0.0)
    # As Milvus: the primary key is always in the result's fields, so pymilvus puts it in
    # the entity too (and the Node SDK reads each hit's id from it).
    assert hits[0][0]["entity"] == {"id": 3, "title": "t3"}
    two = client.search("docs", np.array([[0.0, 0, 1, 2, 3], [49.0, 0, 1, 2, 3]]), limit=2)
    assert [[h["id"] for h in q] for q in two] == [[0, 1], [49, 48]]
    got = client.query("docs", filter="title == 't1' and n < 10", output_fields=["n", "title"])
    assert sorted(r["n"] for r in got) == [1, 5, 9]
    assert client.get("docs", ids=[7], output_fields=["title"])[0]["title"] == "t3"
    assert client.query("docs", filter="n < 5", output_fields=["count(*)"])[0]["count(*)"] == 5
    near = client.search("docs", [[3.3, 0, 1, 2, 3]], limit=2, round_decimal=1)[0]
    assert [(h["id"], h["distance"]) for h in near] == [(3, 0.1), (4, 0.5)]
    with pytest.raises(MilvusException) as e:  # a dynamic key is not a field to group by
        client.search("docs", [[3.0, 0, 1, 2, 3]], limit=2, group_by_field="title")
    assert e.value.code == 1700 and "group_by_field" in e.value.message


def test_upsert_delete_stats(client, docs):
    assert client.upsert("docs", [{"id": 1, "vector": [9.0] * 5, "title": "new", "n": 1}])[
        "upsert_count"] == 1
    assert client.get("docs", ids=[1], output_fields=["title"])[0]["title"] == "new"
    client.delete("docs", filter="n in [2, 3]")
    assert client.query("docs", filter="n in [2, 3]") == []
    assert client.get_collection_stats("docs")["row_count"] == 48
    client.flush("docs")
    assert client.get_collection_stats("docs")["row_count"] == 48


def test_collection_listing_and_describe(client, docs):
    assert "docs" in client.list_collections()
    assert client.has_collection("docs") and not client.has_collection("nope")
    d = client.describe_collection("docs")
    assert [f["name"] for f in d["fields"]] == ["id", "vector"]
    assert d["enable_dynamic_field"] is True
    assert client.list_indexes("docs") == ["vector"]
    assert client.describe_index("docs", "vector")["metric_type"] == "L2"


def test_partitions(client):
    client.create_collection("parts", dimension=5)
    client.create_partition("parts", "p1")
    assert client.list_partitions("parts") == ["_default", "p1"]
    assert client.has_partition("parts", "p1")
    client.insert("parts", [{"id": 1, "vector": [1.0] * 5}], partition_name="p1")
    client.insert("parts", [{"id": 2, "vector": [1.0] * 5}])
    client.release_collection("parts")
    client.load_partitions("parts", ["p1"])
    assert [r["id"] for r in client.query("parts", filter="id > 0")] == [1]
    with pytest.raises(MilvusException) as e:
        client.search("parts", [[1.0] * 5], partition_names=["_default"])
    assert e.value.code == 201
    client.release_partitions("parts", ["p1"])
    client.drop_partition("parts", "p1")
    assert client.list_partitions("parts") == ["_default"]


def test_error_codes(client, srv):
    def code(fn):
        with pytest.raises(MilvusException) as e:
            fn()
        return e.value.code, e.value.message

    schema = MilvusClient.create_schema()
    schema.add_field("k", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("s", DataType.VARCHAR, max_length=8)
    client.create_collection("errs", schema=schema)
    assert code(lambda: client.search("errs", [[0.0] * 4]))[0] == 101
    assert code(lambda: client.load_collection("errs"))[0] == 700
    idx = MilvusClient.prepare_index_params()
    idx.add_index("v", "FLAT", metric_type="L2")
    client.create_index("errs", idx)
    c, msg = code(lambda: client.load_collection("errs", load_fields=["v"]))
    assert c == 1100 and "primary key" in msg
    assert code(lambda: client.load_collection("errs", load_fields=["k", "v", "zz"]))[0] == 1700
    client.load_collection("errs")
    c, msg = code(lambda: client.drop_index("errs", "v"))
    assert c == 65535 and "release it first" in msg
    c, msg = code(lambda: client.load_collection("errs", load_fields=["k", "v"]))
    assert c == 1100 and "can't change the load field list" in msg
    assert code(lambda: client.describe_collection("missing"))[0] == 100
    assert code(lambda: client.insert("errs", [{"k": 5, "v": [1.0] * 4, "s": "x"}],
                                      partition_name="nope"))[0] == 200
    client.release_collection("errs")
    c, msg = code(lambda: client.load_collection("errs", load_fields=["k", "s"]))
    assert c == 1100 and "does not contain vector field" in msg
    client.load_collection("errs", load_fields=["k", "v"])
    c, msg = code(lambda: client.query("errs", filter="s == 'x'"))
    assert c == 1100 and "field s is not loaded" in msg
    client.release_collection("errs")
    client.load_collection("errs")
    assert code(lambda: client.query("errs", filter="s > 1"))[0] == 1100
    assert code(lambda: client.insert("errs", [{"k": 1, "v": [1.0] * 3, "s": "x"}]))[0] != 0


def test_auth_and_memory_limit(tmp_path):
    s = Server(tmp_path / "d", "--token", "root:Milvus", "--memory-limit", "4000")
    try:
        with pytest.raises(MilvusException) as e:
            MilvusClient(uri=s.url, token="root:wrong").list_collections()
        assert e.value.code == 1800 and "hasn't authenticated" in e.value.message
        c = MilvusClient(uri=s.url, token="root:Milvus")
        schema = MilvusClient.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=64)
        idx = MilvusClient.prepare_index_params()
        idx.add_index("vector", "FLAT", metric_type="L2")
        c.create_collection("big", schema=schema)
        c.create_index("big", idx)
        c.insert("big", [{"id": i, "vector": [0.5] * 64} for i in range(100)])
        with pytest.raises(MilvusException) as e:
            c.load_collection("big")
        assert e.value.code == 1400 and "needs" in e.value.message
        assert c.get_load_state("big")["state"].name == "NotLoad"
        c.close()
    finally:
        s.stop()


def test_search_star_returns_dynamic_fields(client, docs):
    """output_fields=["*"] returns every loaded field and dynamic key, as query does
    (llama-index asks for "*" and lost all its metadata)."""
    hit = client.search("docs", [[3.0, 0, 1, 2, 3]], limit=1, output_fields=["*"],
                        filter="n == 4")[0][0]
    assert hit["entity"]["title"] == "t0" and hit["entity"]["n"] == 4
    assert hit["entity"]["vector"] == pytest.approx([4.0, 0, 1, 2, 3])
    named = client.search("docs", [[3.0, 0, 1, 2, 3]], limit=1, output_fields=["n"],
                          filter="n == 4")[0][0]
    assert named["entity"] == {"id": 4, "n": 4}
    bare = client.search("docs", [[3.0, 0, 1, 2, 3]], limit=1, filter="n == 4")[0][0]
    assert bare["entity"] == {"id": 4}


def test_filter_templates_and_unread_fields(client, docs, srv):
    """expr_template_values are applied (they were dropped: 'template {value_0} has no
    value'); a field Hotset does not act on (a reranker in function_score, hybrid
    sub-requests) is 1100 naming it, never a search answered as if it had been applied."""
    got = client.query("docs", filter="n in {ns} and title == {t}",
                       filter_params={"ns": [4, 8, 9], "t": "t0"}, output_fields=["n"])
    assert sorted(r["n"] for r in got) == [4, 8]
    hits = client.search("docs", [[4.0, 0, 1, 2, 3]], limit=5, filter="n > {lo}",
                         filter_params={"lo": 40})[0]
    assert {h["id"] for h in hits} <= set(range(41, 50)) and len(hits) == 5
    import grpc
    from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

    ph = common_pb2.PlaceholderGroup(placeholders=[common_pb2.PlaceholderValue(
        tag="$0", type=common_pb2.FloatVector,
        values=[np.array([3.0, 0, 1, 2, 3], dtype=np.float32).tobytes()])])
    base = dict(collection_name="docs", placeholder_group=ph.SerializeToString(),
                search_params=[common_pb2.KeyValuePair(key="topk", value="2")])
    with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        stub = milvus_pb2_grpc.MilvusServiceStub(ch)
        md = (("authorization", "root:Milvus"),)
        ranked = milvus_pb2.SearchRequest(**base, function_score=schema_pb2.FunctionScore(
            functions=[schema_pb2.FunctionSchema(name="decay", type=3)]))
        r = stub.Search(ranked, metadata=md)  # a reranker without its params: what to give
        assert r.status.code == 1100 and "use reranker='decay' or 'boost'" in r.status.reason
        bm25 = milvus_pb2.SearchRequest(**base, function_score=schema_pb2.FunctionScore(
            functions=[schema_pb2.FunctionSchema(name="f", type=1)]))
        r = stub.Search(bm25, metadata=md)
        assert r.status.code == 1100 and "not a reranker" in r.status.reason
        other_db = milvus_pb2.SearchRequest(**base, db_name="other")
        assert stub.Search(other_db, metadata=md).status.code == 800
        assert stub.Search(milvus_pb2.SearchRequest(**base), metadata=md).status.code == 0


def test_a_key_inserted_twice_comes_back_twice(client):
    """insert does not deduplicate keys (Milvus's rule), so query and get return every
    stored row of that key, as Milvus does."""
    client.create_collection("dups", dimension=5, metric_type="L2")
    client.insert("dups", [{"id": 1, "vector": [1.0] * 5, "v": "a"},
                           {"id": 2, "vector": [2.0] * 5, "v": "b"}])
    client.insert("dups", [{"id": 1, "vector": [3.0] * 5, "v": "c"}])
    got = client.query("dups", filter="id == 1", output_fields=["v"])
    assert sorted(r["v"] for r in got) == ["a", "c"]
    assert sorted(r["v"] for r in client.get("dups", ids=[1], output_fields=["v"])) == ["a", "c"]
    client.flush("dups")
    got = client.query("dups", filter="id >= 0", output_fields=["v"], limit=10)
    assert sorted(r["v"] for r in got) == ["a", "b", "c"]

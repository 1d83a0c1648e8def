"""Hostile names through REST and gRPC (1100, nothing created or removed inside or outside
the data directory), and gRPC auth on every RPC, served or not."""
import json

import pytest

pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")
pytest.importorskip("httpx", reason="the server harness needs httpx")

import grpc  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2  # noqa: E402

from ..hostile import HOSTILE, tree  # noqa: E402
from .harness import Server  # noqa: E402

TOKEN = "root:Milvus"
AUTH = (("authorization", TOKEN),)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("sec")
    (root / "outside").mkdir()
    (root / "outside" / "victim.safetensors").write_bytes(b"keep")
    s = Server(root / "data", "--token", TOKEN)
    s.root = root
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    s.ok("collections/create", {"collectionName": "ok", "dimension": 4}, headers=hdr)
    s.ok("entities/insert", {"collectionName": "ok", "data": [
        {"id": i, "vector": [float(i), 0, 0, 1]} for i in range(5)]}, headers=hdr)
    s.ok("partitions/create", {"collectionName": "ok", "partitionName": "p"}, headers=hdr)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stub(srv):
    ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
    yield milvus_pb2_grpc.MilvusServiceStub(ch)
    ch.close()


def _status(resp):
    return resp if isinstance(resp, common_pb2.Status) else resp.status


def _rest_calls(name):
    vec_index = [{"fieldName": "vector", "indexName": name, "metricType": "COSINE",
                  "indexType": "AUTOINDEX"}]
    return [
        ("collections/create", {"collectionName": name, "dimension": 4}),
        ("collections/create", {"collectionName": "x", "schema": {"fields": [
            {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
            {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}},
            {"fieldName": name, "dataType": "Int64"}]}}),
        ("collections/has", {"collectionName": name}),
        ("collections/describe", {"collectionName": name}),
        ("collections/drop", {"collectionName": name}),
        ("collections/load", {"collectionName": name}),
        ("collections/release", {"collectionName": name}),
        ("entities/insert", {"collectionName": name, "data": [{"id": 9, "vector": [1, 0, 0, 0]}]}),
        ("partitions/create", {"collectionName": "ok", "partitionName": name}),
        ("partitions/has", {"collectionName": "ok", "partitionName": name}),
        ("partitions/drop", {"collectionName": "ok", "partitionName": name}),
        ("partitions/load", {"collectionName": "ok", "partitionNames": [name]}),
        ("partitions/release", {"collectionName": "ok", "partitionNames": [name]}),
        ("indexes/create", {"collectionName": "ok", "indexParams": vec_index}),
        ("indexes/describe", {"collectionName": "ok", "indexName": name}),
        ("indexes/drop", {"collectionName": "ok", "indexName": name}),
    ]


def _grpc_calls(stub, name):
    schema = schema_pb2.CollectionSchema(name=name, fields=[
        schema_pb2.FieldSchema(name="id", data_type=5, is_primary_key=True),
        schema_pb2.FieldSchema(name="v", data_type=101, type_params=[
            common_pb2.KeyValuePair(key="dim", value="4")])]).SerializeToString()
    bad_field = schema_pb2.CollectionSchema(name="x", fields=[
        schema_pb2.FieldSchema(name="id", data_type=5, is_primary_key=True),
        schema_pb2.FieldSchema(name=name, data_type=101, type_params=[
            common_pb2.KeyValuePair(key="dim", value="4")])]).SerializeToString()
    kv = [common_pb2.KeyValuePair(key="index_type", value="AUTOINDEX"),
          common_pb2.KeyValuePair(key="metric_type", value="COSINE")]
    m = milvus_pb2
    return [
        (stub.CreateCollection, m.CreateCollectionRequest(collection_name=name, schema=schema)),
        (stub.CreateCollection, m.CreateCollectionRequest(collection_name="x", schema=bad_field)),
        (stub.HasCollection, m.HasCollectionRequest(collection_name=name)),
        (stub.DescribeCollection, m.DescribeCollectionRequest(collection_name=name)),
        (stub.DropCollection, m.DropCollectionRequest(collection_name=name)),
        (stub.LoadCollection, m.LoadCollectionRequest(collection_name=name)),
        (stub.ReleaseCollection, m.ReleaseCollectionRequest(collection_name=name)),
        (stub.CreatePartition, m.CreatePartitionRequest(collection_name="ok",
                                                        partition_name=name)),
        (stub.HasPartition, m.HasPartitionRequest(collection_name="ok", partition_name=name)),
        (stub.DropPartition, m.DropPartitionRequest(collection_name="ok", partition_name=name)),
        (stub.LoadPartitions, m.LoadPartitionsRequest(collection_name="ok",
                                                      partition_names=[name])),
        (stub.ReleasePartitions, m.ReleasePartitionsRequest(collection_name="ok",
                                                            partition_names=[name])),
        (stub.CreateIndex, m.CreateIndexRequest(collection_name="ok", field_name="vector",
                                                index_name=name, extra_params=kv)),
        (stub.DescribeIndex, m.DescribeIndexRequest(collection_name="ok", index_name=name)),
        (stub.DropIndex, m.DropIndexRequest(collection_name="ok", field_name="vector",
                                            index_name=name)),
    ]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_through_rest_and_grpc(srv, stub, name):
    outside = srv.root / "outside"
    name = name.replace("{outside}", str(outside))
    before = tree(srv.root)
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    for path, body in _rest_calls(name):
        if name == "" and path in ("indexes/create",):
            continue  # "" is the default index name (the field's), as in Milvus
        r = srv.post(path, body, headers=hdr)
        if name == "a/b" and path in ("indexes/describe", "indexes/drop"):
            # the shape of a default JSON-path index name (my_json/a/b): looked up, not found
            assert r.status_code == 200 and "index not found" in r.json()["message"], r.text
            continue
        assert r.status_code == 200 and r.json()["code"] == 1100, (path, r.text)
    for call, req in _grpc_calls(stub, name):
        if name == "" and req.DESCRIPTOR.name in ("CreateIndexRequest", "DescribeIndexRequest",
                                                  "DropIndexRequest"):
            continue  # an empty index name there means the field's index, as in Milvus
        st = _status(call(req, metadata=AUTH))
        if name == "a/b" and req.DESCRIPTOR.name in ("DescribeIndexRequest", "DropIndexRequest"):
            assert "index not found" in st.reason, st  # a default JSON-path index name's shape
            continue
        assert st.code == 1100, (req.DESCRIPTOR.name, st)
    assert tree(srv.root) == before


def test_every_rpc_without_a_token_is_1800(srv, stub):
    """Served or not, an RPC without the right token answers 1800 in its own response type
    (ListCredUsers answered code 0 when the deny handler's Status was read as another
    message)."""
    for md in ((), (("authorization", "root:wrong"),)):
        for call, req in ((stub.ListCredUsers, milvus_pb2.ListCredUsersRequest()),
                          (stub.CreateCredential, milvus_pb2.CreateCredentialRequest()),
                          (stub.ShowCollections, milvus_pb2.ShowCollectionsRequest()),
                          (stub.DropCollection, milvus_pb2.DropCollectionRequest(
                              collection_name="ok"))):
            st = _status(call(req, metadata=md))
            assert st.code == 1800 and "authenticated" in st.reason
    assert _status(stub.HasCollection(milvus_pb2.HasCollectionRequest(collection_name="ok"),
                                      metadata=AUTH)).code == 0


def test_unserved_rpcs_answer_their_type_with_a_milvus_code(srv, stub):
    resp = stub.ListCredUsers(milvus_pb2.ListCredUsersRequest(), metadata=AUTH)
    assert resp.status.code == 10 and "ListCredUsers" in resp.status.reason
    st = stub.CreateRole(milvus_pb2.CreateRoleRequest(), metadata=AUTH)
    assert st.code == 10 and "CreateRole" in st.reason


def test_grpc_odd_arguments_are_1100(srv, stub):
    """A non-integer limit, an empty vector, a corrupt schema, an unknown data type: 1100
    naming the problem, not 65535 with a Python error."""
    m = milvus_pb2
    q = stub.Query(m.QueryRequest(collection_name="ok", expr="id >= 0", query_params=[
        common_pb2.KeyValuePair(key="limit", value="ten")]), metadata=AUTH)
    assert q.status.code == 1100 and "limit must be an integer" in q.status.reason
    fd = schema_pb2.FieldData(field_name="vector", type=101)
    fd.vectors.dim = 4
    ins = m.InsertRequest(collection_name="ok", num_rows=1, fields_data=[
        schema_pb2.FieldData(field_name="id", type=5, scalars=schema_pb2.ScalarField(
            long_data=schema_pb2.LongArray(data=[99]))), fd])
    r = stub.Insert(ins, metadata=AUTH)
    assert r.status.code == 1100 and "vector" in r.status.reason
    st = stub.CreateCollection(m.CreateCollectionRequest(collection_name="x",
                                                         schema=b"\xff\x00garbage"),
                               metadata=AUTH)
    assert st.code == 1100
    bad_type = schema_pb2.CollectionSchema(name="x", fields=[
        schema_pb2.FieldSchema(name="id", data_type=5, is_primary_key=True),
        schema_pb2.FieldSchema(name="v", data_type=777, type_params=[
            common_pb2.KeyValuePair(key="dim", value="4")])]).SerializeToString()
    st = stub.CreateCollection(m.CreateCollectionRequest(collection_name="x", schema=bad_type),
                               metadata=AUTH)
    assert st.code == 1100 and "777" in st.reason

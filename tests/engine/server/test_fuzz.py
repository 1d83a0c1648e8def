"""Fuzzing both front ends with hypothesis: >= 5,000 generated REST bodies over every
endpoint and >= 1,000 gRPC requests with bad arguments, in process (the REST app through
starlette's test client, gRPC on a loopback port). Every answer must be HTTP 200/401/404
with JSON, carry a documented Milvus code, leak no Python exception text, and a refused
request must change nothing (row counts, manifests, catalog and WALs compared)."""
from __future__ import annotations

import json
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("pymilvus", reason="the gRPC fuzz needs pymilvus")
pytest.importorskip("httpx", reason="the REST fuzz needs httpx")

import grpc  # noqa: E402
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2  # noqa: E402
with warnings.catch_warnings():  # starlette's note about httpx2, not about this test
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from engine import MilvusClient  # noqa: E402
from engine.server.grpc.server import start_grpc  # noqa: E402
from engine.server.rest.app import create_app  # noqa: E402

from ...conftest import basic_rows, basic_schema, index_params  # noqa: E402

REST_BODIES = 5000
GRPC_REQUESTS = 1000
DOCUMENTED = {0, 10, 100, 101, 104, 200, 201, 700, 800, 1100, 1400, 1700, 1800, 1801, 1802,
              1804, 65535}
LEAKS = re.compile(r"Traceback|object has no attribute|invalid literal|NoneType|unhashable|"
                   r"not subscriptable|index out of range|cannot reshape|KeyError|"
                   r"internal error|RecursionError|OverflowError|AttributeError|TypeError")
COUNT = {"rest": 0, "grpc": 0}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    c = MilvusClient(str(tmp_path_factory.mktemp("fuzz") / "data"), device="cpu")
    for name in ("fz", "fz2"):
        c.create_collection(name, schema=basic_schema(), index_params=index_params())
        c.insert(name, basic_rows(30))
        c.create_partition(name, "p1")
    c.flush("fz")
    yield c
    c.close()


def state(c: MilvusClient) -> tuple:
    """What a refused request must not change."""
    root = c._db._dir.root
    files = {str(p.relative_to(root)): p.read_bytes() if p.name != "wal.log"
             else p.stat().st_size for p in root.rglob("*")
             if p.name in ("manifest.json", "catalog.json", "wal.log")}
    rows = {n: c.get_collection_stats(n)["row_count"] for n in c.list_collections()}
    return files, rows


# -- REST ----------------------------------------------------------------------------------
ENDPOINTS = {
    "collections/create": ["collectionName", "dimension", "metricType", "idType", "autoID",
                           "primaryFieldName", "vectorFieldName", "schema", "indexParams",
                           "params"],
    "collections/describe": ["collectionName"], "collections/list": [],
    "collections/has": ["collectionName"], "collections/drop": ["collectionName"],
    "collections/get_stats": ["collectionName"],
    "collections/load": ["collectionName", "loadFields", "skipLoadDynamicField",
                         "replicaNumber"],
    "collections/release": ["collectionName"], "collections/refresh_load": ["collectionName"],
    "collections/get_load_state": ["collectionName", "partitionNames"],
    "entities/insert": ["collectionName", "data", "partitionName"],
    "entities/upsert": ["collectionName", "data", "partitionName"],
    "entities/delete": ["collectionName", "filter", "id", "partitionName"],
    "entities/search": ["collectionName", "data", "annsField", "filter", "limit", "offset",
                        "outputFields", "searchParams", "partitionNames", "groupingField"],
    "entities/query": ["collectionName", "filter", "limit", "offset", "outputFields",
                       "partitionNames"],
    "entities/get": ["collectionName", "id", "outputFields", "partitionNames"],
    "indexes/create": ["collectionName", "indexParams"],
    "indexes/list": ["collectionName", "fieldName"],
    "indexes/describe": ["collectionName", "indexName"],
    "indexes/drop": ["collectionName", "indexName"],
    "partitions/create": ["collectionName", "partitionName"],
    "partitions/list": ["collectionName"], "partitions/has": ["collectionName", "partitionName"],
    "partitions/drop": ["collectionName", "partitionName"],
    "partitions/load": ["collectionName", "partitionNames"],
    "partitions/release": ["collectionName", "partitionNames"],
}
NAMES = st.sampled_from(["fz", "fz2", "nope", "", "p1", "_default", "vec", "id", "title",
                         "../x", "a\nb", "a" * 300, "$meta", "*", "count(*)"])
FILTERS = st.sampled_from(["id > 3", "title like 't%'", "id in [1, 2]", "color == 'red'",
                           "id > ", "x >", "1/0 > 1", "score / 0 > 1", "title like '\\'",
                           "json_contains(color, 1)", "((((", "age + 1 > 0", "not"]) | st.text(
    max_size=20)
SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | NAMES)
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | NAMES, c, max_size=4),
                      max_leaves=12)
VECTORS = st.lists(st.lists(st.floats(-2, 2) | st.integers(-3, 3), min_size=0, max_size=9),
                   max_size=3)


def _value(key: str):
    special = {"collectionName": NAMES, "partitionName": NAMES, "indexName": NAMES,
               "fieldName": NAMES, "annsField": NAMES, "filter": FILTERS, "data": VECTORS,
               "partitionNames": st.lists(NAMES, max_size=3),
               "outputFields": st.lists(NAMES, max_size=3),
               "loadFields": st.lists(NAMES, max_size=3),
               "limit": st.integers(-5, 20000), "offset": st.integers(-5, 20000),
               "id": st.lists(st.integers(-(2 ** 70), 2 ** 70), max_size=3)}
    base = special.get(key, VALUES)
    return base | VALUES


@st.composite
def rest_request(draw):
    path = draw(st.sampled_from(sorted(ENDPOINTS)))
    keys = ENDPOINTS[path]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
    body = {k: draw(_value(k)) for k in chosen}
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=10))] = draw(VALUES)
    if path == "entities/insert" and draw(st.booleans()):
        body["data"] = [{"id": draw(st.integers(-5, 2 ** 64)),
                         "vec": draw(st.lists(st.floats(-1, 1), min_size=7, max_size=9)),
                         "title": draw(st.text(max_size=40)), "score": draw(VALUES),
                         "age": draw(VALUES), "extra": draw(VALUES)}]
    kind = draw(st.integers(0, 19))
    if kind == 0:
        raw = draw(st.binary(max_size=40))
    elif kind == 1:
        raw = draw(st.text(max_size=40)).encode()
    elif kind == 2:
        depth = draw(st.integers(100, 6000))
        raw = ('{"collectionName": "fz", "filter": ' + "[" * depth + "]" * depth + "}").encode()
    else:
        raw = json.dumps(body).encode()
    return path, raw


@pytest.fixture(scope="module")
def http(engine):
    with TestClient(create_app(engine), raise_server_exceptions=False) as t:
        yield t


def _check_answer(status: int, text: str) -> int:
    assert status in (200, 401, 404), (status, text)
    out = json.loads(text)
    assert out["code"] in DOCUMENTED, out
    assert not LEAKS.search(out.get("message", "")), out
    return out["code"]


@settings(max_examples=REST_BODIES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(req=rest_request())
def test_rest_fuzz(engine, http, req):
    path, raw = req

    def send():
        r = http.post(f"/v2/vectordb/{path}", content=raw)
        return _check_answer(r.status_code, r.text), r.text

    _refused_changes_nothing(engine, "rest", send, (path, raw[:200]))


def _refused_changes_nothing(engine, kind: str, send, what) -> None:
    """Send one request; if it was refused, nothing on disk or in the counts changed."""
    before = state(engine)
    code, answer = send()
    COUNT[kind] += 1
    if code != 0:
        assert state(engine) == before, (what, answer)


# -- gRPC ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stub(engine):
    server, port = start_grpc(engine, 0)
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield milvus_pb2_grpc.MilvusServiceStub(ch)
    ch.close()
    server.stop(0)


KV = st.lists(st.tuples(st.sampled_from(["limit", "topk", "offset", "params", "metric_type",
                                         "anns_field", "round_decimal", "ignore_growing",
                                         "index_type", "nlist", "group_by_field", "x"]),
                        st.text(max_size=12) | st.integers(-3, 20000).map(str)
                        | st.sampled_from(['{"nprobe": 4}', "[1]", "{", "COSINE", "L2"])),
              max_size=4).map(lambda kvs: [common_pb2.KeyValuePair(key=k, value=v)
                                           for k, v in kvs])
TEXT = NAMES | st.text(max_size=12)


@st.composite
def field_data(draw):
    kind = draw(st.integers(0, 3))
    name = draw(st.sampled_from(["id", "vec", "title", "age", "$meta", "zz"]))
    fd = schema_pb2.FieldData(field_name=name, type=draw(st.sampled_from([5, 21, 101, 23, 4])))
    if kind == 0:
        fd.scalars.long_data.data.extend(draw(st.lists(st.integers(-(2 ** 63), 2 ** 63 - 1),
                                                       max_size=3)))
    elif kind == 1:
        fd.vectors.dim = draw(st.integers(-2, 9))
        fd.vectors.float_vector.data.extend(draw(st.lists(st.floats(-2, 2, width=32),
                                                          max_size=20)))
    elif kind == 2:
        fd.scalars.json_data.data.extend([s.encode() for s in draw(st.lists(
            st.sampled_from(["{}", '{"a": 1}', "[1]", "{", "null", "1"]), max_size=3))])
    else:
        fd.scalars.string_data.data.extend(draw(st.lists(st.text(max_size=40), max_size=3)))
    if draw(st.booleans()):
        fd.valid_data.extend(draw(st.lists(st.booleans(), max_size=4)))
    return fd


@st.composite
def placeholder(draw):
    n = draw(st.integers(0, 3))
    size = draw(st.integers(0, 40))
    values = [draw(st.binary(min_size=size, max_size=size)) for _ in range(n)]
    kind = draw(st.sampled_from([common_pb2.FloatVector, common_pb2.Float16Vector, 100]))
    ph = common_pb2.PlaceholderValue(tag="$0", type=kind, values=values)
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=30))
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()


@st.composite
def grpc_request(draw):
    m = milvus_pb2
    name = draw(TEXT)
    which = draw(st.integers(0, 11))
    if which == 0:
        return "Query", m.QueryRequest(collection_name=name, expr=draw(FILTERS),
                                       output_fields=draw(st.lists(TEXT, max_size=2)),
                                       query_params=draw(KV))
    if which == 1:
        return "Search", m.SearchRequest(collection_name=name, dsl=draw(FILTERS),
                                         placeholder_group=draw(placeholder()),
                                         search_params=draw(KV),
                                         output_fields=draw(st.lists(TEXT, max_size=2)))
    if which in (2, 3):
        rpc = "Insert" if which == 2 else "Upsert"
        req = getattr(m, f"{rpc}Request")(collection_name=name,
                                          partition_name=draw(st.sampled_from(["", "p1", "x"])),
                                          num_rows=draw(st.integers(0, 4)))
        req.fields_data.extend(draw(st.lists(field_data(), max_size=4)))
        return rpc, req
    if which == 4:
        return "Delete", m.DeleteRequest(collection_name=name, expr=draw(FILTERS))
    if which == 5:
        return "CreateIndex", m.CreateIndexRequest(collection_name=name,
                                                   field_name=draw(TEXT),
                                                   index_name=draw(TEXT),
                                                   extra_params=draw(KV))
    if which == 6:
        return "LoadCollection", m.LoadCollectionRequest(
            collection_name=name, replica_number=draw(st.integers(0, 3)),
            load_fields=draw(st.lists(TEXT, max_size=3)))
    if which == 7:
        schema = draw(st.binary(max_size=40)) if draw(st.booleans()) else \
            schema_pb2.CollectionSchema(name=name, fields=[
                schema_pb2.FieldSchema(name=draw(TEXT), data_type=draw(st.sampled_from(
                    [0, 1, 5, 21, 22, 23, 101, 104, 105, 999])),
                    is_primary_key=draw(st.booleans()),
                    type_params=draw(KV)) for _ in range(draw(st.integers(0, 3)))
            ]).SerializeToString()
        return "CreateCollection", m.CreateCollectionRequest(collection_name=name, schema=schema)
    if which == 8:
        return "DropIndex", m.DropIndexRequest(collection_name=name, index_name=draw(TEXT))
    if which == 9:
        return "CreatePartition", m.CreatePartitionRequest(collection_name=name,
                                                           partition_name=draw(TEXT))
    if which == 10:
        return "ReleasePartitions", m.ReleasePartitionsRequest(
            collection_name=name, partition_names=draw(st.lists(TEXT, max_size=2)))
    return "GetLoadState", m.GetLoadStateRequest(collection_name=name)


@settings(max_examples=GRPC_REQUESTS, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(req=grpc_request())
def test_grpc_fuzz(engine, stub, req):
    rpc, msg = req

    def send():
        resp = getattr(stub, rpc)(msg, timeout=30)
        st_ = resp if isinstance(resp, common_pb2.Status) else resp.status
        assert st_.code in DOCUMENTED, (rpc, st_)
        assert not LEAKS.search(st_.reason), (rpc, st_.reason)
        return st_.code, st_.reason

    _refused_changes_nothing(engine, "grpc", send, (rpc, msg))


def test_fuzz_ran_the_promised_number_of_requests():
    if not any(COUNT.values()):
        pytest.skip("the fuzz tests were not selected")
    assert COUNT["rest"] >= REST_BODIES and COUNT["grpc"] >= GRPC_REQUESTS, COUNT

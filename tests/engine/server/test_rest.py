"""The REST server as a real process on a free loopback port, driven over HTTP."""
import json
import os
import signal
import subprocess
import sys

import pytest

from engine import MilvusClient

httpx = pytest.importorskip("httpx", reason="the REST tests need httpx")

from .harness import ROOT, Server  # noqa: E402

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("rest") / "data")
    yield s
    s.stop()


def _rows(n, start=0, dim=5):
    return [{"id": i, "vector": [float(i + j) for j in range(dim)], "color": f"c{i % 3}"}
            for i in range(start, start + n)]


def test_load_release_curl_sequence(srv):
    """The Load & Release page's cURL calls, verbatim but for host and port."""
    srv.ok("collections/create", {"collectionName": "quick_setup", "dimension": 5})
    assert srv.ok("collections/get_load_state", {"collectionName": "quick_setup"}) == {
        "loadState": "LoadStateLoaded", "loadProgress": 100, "message": ""}
    srv.ok("collections/release", {"collectionName": "quick_setup"})
    assert srv.ok("collections/get_load_state", {"collectionName": "quick_setup"}) == {
        "loadState": "LoadStateNotLoad"}
    srv.ok("collections/load", {"collectionName": "quick_setup"})
    assert srv.ok("collections/get_load_state", {"collectionName": "quick_setup"})[
        "loadState"] == "LoadStateLoaded"
    r = srv.post("collections/get_load_state", {"collectionName": "nope"}).json()
    assert r["code"] == 100 and "collection not found" in r["message"]


def test_collections_endpoints(srv):
    schema = {"autoID": False, "enableDynamicField": True, "fields": [
        {"fieldName": "my_id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "my_vector", "dataType": "FloatVector", "elementTypeParams": {"dim": "5"}},
        {"fieldName": "my_varchar", "dataType": "VarChar", "elementTypeParams": {"max_length": 512}},
        {"fieldName": "tags", "dataType": "Array", "elementDataType": "Int64",
         "elementTypeParams": {"max_capacity": 4}}]}
    idx = [{"fieldName": "my_vector", "metricType": "L2", "indexName": "my_vector",
            "params": {"index_type": "AUTOINDEX"}}]
    srv.ok("collections/create", {"collectionName": "c1", "schema": schema, "indexParams": idx})
    assert srv.ok("collections/has", {"collectionName": "c1"}) == {"has": True}
    assert srv.ok("collections/has", {"collectionName": "zz"}) == {"has": False}
    assert "c1" in srv.ok("collections/list", {})
    d = srv.ok("collections/describe", {"collectionName": "c1"})
    assert d["load"] == "LoadStateLoaded" and d["enableDynamicField"] is True
    assert [f["name"] for f in d["fields"]] == ["my_id", "my_vector", "my_varchar", "tags"]
    assert d["fields"][1]["params"] == [{"key": "dim", "value": "5"}]
    assert d["fields"][3]["elementType"] == "Int64"
    assert d["indexes"] == [{"fieldName": "my_vector", "indexName": "my_vector",
                             "metricType": "L2"}]
    rows = [{"my_id": i, "my_vector": [i, 0, 0, 0, 1], "my_varchar": f"v{i}", "tags": [i]}
            for i in range(10)]
    assert srv.ok("entities/insert", {"collectionName": "c1", "data": rows}) == {
        "insertCount": 10, "insertIds": list(range(10))}
    assert srv.ok("collections/get_stats", {"collectionName": "c1"}) == {"rowCount": 10}
    srv.ok("collections/refresh_load", {"collectionName": "c1"})
    srv.ok("collections/release", {"collectionName": "c1"})
    srv.ok("collections/load", {"collectionName": "c1", "loadFields": ["my_id", "my_vector"],
                                "skipLoadDynamicField": True})
    r = srv.post("entities/query", {"collectionName": "c1", "filter": "my_varchar == 'v1'"})
    assert r.json()["code"] == 1100 and "not loaded" in r.json()["message"]
    srv.ok("collections/drop", {"collectionName": "c1"})
    assert srv.ok("collections/has", {"collectionName": "c1"}) == {"has": False}


def test_entities_endpoints(srv):
    srv.ok("collections/create", {"collectionName": "e", "dimension": 5, "metricType": "L2"})
    srv.ok("entities/insert", {"collectionName": "e", "data": _rows(20)})
    hits = srv.ok("entities/search", {"collectionName": "e", "data": [[0, 1, 2, 3, 4]],
                                      "limit": 3, "outputFields": ["color"]})
    assert len(hits) == 3 and hits[0] == {"id": 0, "distance": 0.0, "color": "c0"}
    two = srv.ok("entities/search", {"collectionName": "e", "data": [[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]],
                                     "limit": 2, "filter": "id > 0",
                                     "searchParams": {"metricType": "L2", "params": {}}})
    assert len(two) == 4 and all(h["id"] > 0 for h in two)  # one flat list for both queries
    q = srv.ok("entities/query", {"collectionName": "e", "filter": "color == 'c1'",
                                  "outputFields": ["id", "color"], "limit": 3})
    assert q == [{"id": 1, "color": "c1"}, {"id": 4, "color": "c1"}, {"id": 7, "color": "c1"}]
    assert len(srv.ok("entities/query", {"collectionName": "e"})) == 20  # limit defaults to 100
    assert srv.ok("entities/get", {"collectionName": "e", "id": [2, 3],
                                   "outputFields": ["color"]}) == [
        {"id": 2, "color": "c2"}, {"id": 3, "color": "c0"}]
    assert srv.ok("entities/get", {"collectionName": "e", "id": 5}) == [{"id": 5}]
    up = srv.ok("entities/upsert", {"collectionName": "e",
                                    "data": [{"id": 2, "vector": [9] * 5, "color": "new"}]})
    assert up == {"upsertCount": 1, "upsertIds": [2]}
    assert srv.ok("entities/get", {"collectionName": "e", "id": 2,
                                   "outputFields": ["color"]}) == [{"id": 2, "color": "new"}]
    assert srv.ok("entities/delete", {"collectionName": "e", "filter": "id in [1, 2, 3]"}) == {
        "deleteCount": 3}
    assert srv.ok("collections/get_stats", {"collectionName": "e"}) == {"rowCount": 17}


def test_index_endpoints(srv):
    srv.ok("collections/create", {"collectionName": "ix", "schema": {"fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}}]}})
    srv.ok("entities/insert", {"collectionName": "ix", "data": [
        {"id": i, "v": [i, 1, 2, 3]} for i in range(40)]})
    srv.ok("indexes/create", {"collectionName": "ix", "indexParams": [
        {"fieldName": "v", "indexName": "v_idx", "metricType": "L2",
         "params": {"index_type": "IVF_FLAT", "nlist": 4}}]})
    assert srv.ok("indexes/list", {"collectionName": "ix"}) == ["v_idx"]
    d = srv.ok("indexes/describe", {"collectionName": "ix", "indexName": "v_idx"})
    assert d[0]["indexType"] == "IVF_FLAT" and d[0]["metricType"] == "L2"
    assert d[0]["params"]["nlist"] == 4 and d[0]["totalRows"] == 40
    srv.ok("collections/load", {"collectionName": "ix"})
    r = srv.post("indexes/drop", {"collectionName": "ix", "indexName": "v_idx"}).json()
    assert r["code"] == 65535 and "release it first" in r["message"]
    srv.ok("collections/release", {"collectionName": "ix"})
    srv.ok("indexes/drop", {"collectionName": "ix", "indexName": "v_idx"})
    assert srv.ok("indexes/list", {"collectionName": "ix"}) == []


def test_scalar_and_json_path_indexes(srv):
    srv.ok("collections/create", {"collectionName": "sx", "schema": {
        "enableDynamicField": True, "fields": [
            {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
            {"fieldName": "age", "dataType": "Int32"},
            {"fieldName": "meta", "dataType": "JSON"},
            {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]},
        "indexParams": [{"fieldName": "v", "indexName": "v", "metricType": "L2"}]})
    srv.ok("entities/insert", {"collectionName": "sx", "data": [
        {"id": i, "age": i, "meta": {"a": {"b": i % 4}}, "v": [i, 1], "color": f"c{i % 3}"}
        for i in range(30)]})
    srv.ok("indexes/create", {"collectionName": "sx", "indexParams": [
        {"fieldName": "age", "indexName": "age_idx", "params": {"index_type": "STL_SORT"}},
        {"fieldName": "meta", "indexType": "INVERTED",
         "params": {"json_path": "meta['a']['b']", "json_cast_type": "double"}},
        {"fieldName": "color", "indexName": "color_idx", "indexType": "INVERTED",
         "params": {"json_path": "color", "json_cast_type": "varchar"}}]})
    assert srv.ok("indexes/list", {"collectionName": "sx"}) == ["v", "age_idx", "meta/a/b",
                                                                "color_idx"]
    d = srv.ok("indexes/describe", {"collectionName": "sx", "indexName": "meta/a/b"})[0]
    assert d["indexType"] == "INVERTED" and d["params"]["json_cast_type"] == "DOUBLE"
    got = srv.ok("entities/query", {"collectionName": "sx", "outputFields": ["id"],
                                    "filter": "meta['a']['b'] == 1 and age < 10 and "
                                              "color == 'c1'"})
    assert sorted(r["id"] for r in got) == [1]
    r = srv.post("indexes/create", {"collectionName": "sx", "indexParams": [
        {"fieldName": "meta", "indexType": "INVERTED", "params": {"json_path": "meta['x']"}}]})
    assert r.json()["code"] == 1100 and "json_cast_type" in r.json()["message"]


def test_database_endpoints(srv):
    srv.ok("databases/create", {"dbName": "rdb", "properties": {
        "database.max.collections": 4}})
    assert srv.ok("databases/list", {}) == ["default", "rdb"]
    assert srv.ok("databases/describe", {"dbName": "rdb"}) == {
        "dbName": "rdb", "properties": [{"key": "database.max.collections", "value": "4"}]}
    srv.ok("collections/create", {"dbName": "rdb", "collectionName": "only_here",
                                  "dimension": 2})
    assert srv.ok("collections/list", {"dbName": "rdb"}) == ["only_here"]
    assert "only_here" not in srv.ok("collections/list", {})
    srv.ok("databases/alter", {"dbName": "rdb", "properties": {
        "database.force.deny.writing": True}})
    r = srv.post("entities/insert", {"dbName": "rdb", "collectionName": "only_here",
                                     "data": [{"id": 1, "vector": [0, 1]}]}).json()
    assert r["code"] == 9 and "deny writing" in r["message"]
    srv.ok("databases/drop_properties", {"dbName": "rdb",
                                         "propertyKeys": ["database.force.deny.writing"]})
    r = srv.post("databases/drop", {"dbName": "rdb"}).json()
    assert r["code"] == 65535 and "not empty" in r["message"]
    srv.ok("collections/drop", {"dbName": "rdb", "collectionName": "only_here"})
    srv.ok("databases/drop", {"dbName": "rdb"})
    r = srv.post("collections/list", {"dbName": "rdb"}).json()
    assert r["code"] == 800


def test_add_field_properties_partition_stats(srv):
    srv.ok("collections/create", {"collectionName": "af", "dimension": 2})
    srv.ok("entities/insert", {"collectionName": "af", "data": [
        {"id": i, "vector": [i, 1]} for i in range(3)]})
    srv.ok("collections/fields/add", {"collectionName": "af", "schema": {
        "fieldName": "price", "dataType": "Double", "nullable": True, "defaultValue": 2.5}})
    got = srv.ok("entities/query", {"collectionName": "af", "filter": "price == 2.5",
                                    "outputFields": ["price"]})
    assert sorted(r["id"] for r in got) == [0, 1, 2]
    r = srv.post("collections/fields/add", {"collectionName": "af", "schema": {
        "fieldName": "n", "dataType": "Int64"}}).json()
    assert r["code"] == 1100 and "nullable" in r["message"]
    srv.ok("collections/alter_properties", {"collectionName": "af",
                                            "properties": {"mmap.enabled": False}})
    r = srv.post("collections/alter_properties", {"collectionName": "af",
                                                  "properties": {"mmap.enabled": True}}).json()
    assert r["code"] == 1100
    srv.ok("collections/drop_properties", {"collectionName": "af",
                                           "propertyKeys": ["mmap.enabled"]})
    assert srv.ok("partitions/get_stats", {"collectionName": "af",
                                           "partitionName": "_default"}) == {"rowCount": 3}
    r = srv.post("collections/nope/add", {"collectionName": "af"})
    assert r.status_code == 404 and r.json()["code"] == 1100


def test_partition_key_field(srv):
    srv.ok("collections/create", {"collectionName": "pkm", "schema": {"fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "tenant", "dataType": "VarChar", "isPartitionKey": True,
         "elementTypeParams": {"max_length": 8}},
        {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}}]}})
    fields = {f["name"]: f for f in srv.ok("collections/describe",
                                           {"collectionName": "pkm"})["fields"]}
    assert fields["tenant"]["partitionKey"] and not fields["id"]["partitionKey"]
    r = srv.post("partitions/create", {"collectionName": "pkm", "partitionName": "p1"}).json()
    assert r["code"] == 1100 and "partition key mode" in r["message"]


def test_partition_endpoints(srv):
    srv.ok("collections/create", {"collectionName": "p", "dimension": 5})
    srv.ok("partitions/create", {"collectionName": "p", "partitionName": "p1"})
    assert srv.ok("partitions/list", {"collectionName": "p"}) == ["_default", "p1"]
    assert srv.ok("partitions/has", {"collectionName": "p", "partitionName": "p1"}) == {"has": True}
    srv.ok("entities/insert", {"collectionName": "p", "data": _rows(3), "partitionName": "p1"})
    srv.ok("collections/release", {"collectionName": "p"})
    srv.ok("partitions/load", {"collectionName": "p", "partitionNames": ["p1"]})
    assert srv.ok("collections/get_load_state", {"collectionName": "p",
                                                  "partitionNames": ["p1"]})["loadState"] == \
        "LoadStateLoaded"
    assert srv.ok("collections/get_load_state", {"collectionName": "p",
                                                  "partitionNames": ["_default"]})[
        "loadState"] == "LoadStateNotLoad"
    assert len(srv.ok("entities/query", {"collectionName": "p", "partitionNames": ["p1"]})) == 3
    srv.ok("partitions/release", {"collectionName": "p", "partitionNames": ["p1"]})
    srv.ok("partitions/drop", {"collectionName": "p", "partitionName": "p1"})
    assert srv.ok("partitions/list", {"collectionName": "p"}) == ["_default"]


@pytest.mark.parametrize("body, code, fragment", [
    ('{"collectionName": "bad", "data": [', 1801, "not valid JSON"),
    ("[1, 2]", 1801, "JSON object"),
    ({"data": [{"id": 1}]}, 1802, "collectionName"),
    ({"collectionName": "bad"}, 1802, "data"),
    ({"collectionName": "bad", "data": [{"id": 1, "vector": [1, 2]}]}, 1804, "dim"),
    ({"collectionName": "bad", "data": [{"vector": [1, 2, 3, 4, 5]}]}, 1804, "missed"),
    ({"collectionName": "bad", "data": [{"id": "x", "vector": [1] * 5}]}, 1804, "INT64"),
    ({"collectionName": "bad", "data": [{"id": 9, "vector": [1] * 5},
                                        {"id": 10, "vector": ["a"] * 5}]}, 1804, "vector"),
    ({"collectionName": "bad", "data": 5}, 1100, "data"),
])
def test_bad_input_changes_nothing(srv, body, code, fragment):
    if not srv.ok("collections/has", {"collectionName": "bad"})["has"]:
        srv.ok("collections/create", {"collectionName": "bad", "dimension": 5})
        srv.ok("entities/insert", {"collectionName": "bad", "data": _rows(4)})
    before = srv.ok("collections/get_stats", {"collectionName": "bad"})
    r = srv.post("entities/insert", body)
    assert r.status_code == 200
    out = r.json()
    assert out["code"] == code and fragment in out["message"], out
    assert srv.ok("collections/get_stats", {"collectionName": "bad"}) == before


def test_unknown_endpoint_and_method(srv):
    assert srv.post("collections/frobnicate", {}).json()["code"] == 1100
    assert srv.http.get("/v2/vectordb/collections/list").status_code == 405


def test_auth_and_body_limit(tmp_path):
    s = Server(tmp_path / "d", "--token", "root:Milvus", "--max-body", "2000")
    try:
        r = s.post("collections/list", {})
        assert r.status_code == 401 and r.json() == {"code": 1800,
                                                    "message": "user hasn't authenticated"}
        r = s.post("collections/list", {}, headers={"Authorization": "Bearer root:wrong"})
        assert r.status_code == 401
        auth = {"Authorization": "Bearer root:Milvus"}
        assert s.ok("collections/list", {}, headers=auth) == []
        s.ok("collections/create", {"collectionName": "a", "dimension": 5}, headers=auth)
        r = s.post("entities/insert", {"collectionName": "a", "data": _rows(100)}, headers=auth)
        assert r.json()["code"] == 1801 and "limit" in r.json()["message"]
        assert s.ok("collections/get_stats", {"collectionName": "a"}, headers=auth) == {
            "rowCount": 0}
    finally:
        s.stop()


def test_refuses_public_interface_without_token(tmp_path):
    out = subprocess.run([sys.executable, "-m", "engine", "serve", "--host", "0.0.0.0",
                          "--data", str(tmp_path / "d"), "--port", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and "without --token" in out.stderr


@pytest.mark.parametrize("flags", [["--ray-workers", "3"], ["--ray", "--ray-workers", "0"]])
def test_refuses_ray_workers_it_would_not_start(tmp_path, flags):
    out = subprocess.run([sys.executable, "-m", "engine", "serve", "--data",
                          str(tmp_path / "d"), "--port", "1", *flags], cwd=ROOT,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2 and "--ray-workers needs --ray" in out.stderr


def test_sigterm_flushes_and_releases(tmp_path):
    s = Server(tmp_path / "d")
    s.ok("collections/create", {"collectionName": "f", "dimension": 5})
    s.ok("entities/insert", {"collectionName": "f", "data": _rows(7)})
    # uvicorn re-raises the signal after its graceful shutdown: exit by SIGTERM, data flushed
    assert s.stop() in (0, -signal.SIGTERM)
    (folder,) = (tmp_path / "d" / "collections").iterdir()
    assert (folder / "wal.log").stat().st_size == 0  # flushed
    c = MilvusClient(str(tmp_path / "d"), device="cpu")  # the directory lock was released
    assert c.get_collection_stats("f") == {"row_count": 7}
    c.close()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path, body, code, fragment", [
    ("entities/search", {"collectionName": "bad", "data": [[1] * 5], "groupingFields": ["id"]},
     1100, "groupingFields is not supported"),
    ("entities/search", {"collectionName": "bad", "data": [[1] * 5], "groupSize": 3},
     1100, "group_size needs group_by_field"),
    ("entities/search", {"collectionName": "bad", "data": [[1] * 5],
                         "searchParams": {"metricType": "COSINE", "rerank": 1}},
     1100, "rerank is not supported"),
    ("entities/query", {"collectionName": "bad", "filter": "id > 0", "frobnicate": 1},
     1100, "frobnicate is not supported"),
    ("collections/create", {"collectionName": "z", "dimension": 4,
                            "params": {"ttlSeconds": 5}}, 1100, "ttlSeconds"),
    ("collections/create", {"collectionName": "z", "schema": {"fields": [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True, "isPartitionKey": True},
        {"fieldName": "v", "dataType": "FloatVector", "elementTypeParams": {"dim": 4}}]}},
     1100, "partition key must be"),
    ("entities/query", {"collectionName": "bad", "filter": "id > 0", "dbName": "other"},
     800, "database not found"),
    ("entities/get", {"collectionName": "bad", "id": [2 ** 70]}, 1100, "int64"),
    ("entities/delete", {"collectionName": "bad", "id": [-(2 ** 64)]}, 1100, "int64"),
    ("entities/query", '{"collectionName": "bad", "filter": "id > 0", "x": '
     + _nested(5000) + "}", 1801, "too deep"),
    ("entities/insert", {"collectionName": "bad", "data": [
        {"id": 77, "vector": [1] * 5, "meta": json.loads(_nested(100))}]}, 1804,
     "more than 64 levels"),
])
def test_refused_keys_and_odd_values_change_nothing(srv, path, body, code, fragment):
    """A key Hotset does not serve is refused, not dropped; values no handler expects
    (ids past int64, bodies nested thousands deep) are documented codes, never HTTP 500."""
    if not srv.ok("collections/has", {"collectionName": "bad"})["has"]:
        srv.ok("collections/create", {"collectionName": "bad", "dimension": 5})
        srv.ok("entities/insert", {"collectionName": "bad", "data": _rows(4)})
    before = (srv.ok("collections/get_stats", {"collectionName": "bad"}),
              srv.ok("collections/list"))
    r = srv.post(path, body)
    assert r.status_code == 200
    out = r.json()
    assert out["code"] == code and fragment in out["message"], out
    assert (srv.ok("collections/get_stats", {"collectionName": "bad"}),
            srv.ok("collections/list")) == before

"""The compatibility table in the README, kept true: every cell is run here, through the
embedded client, pymilvus over gRPC and the RESTful v2 API against a server, and the
README must hold the table exactly as ``render()`` writes it.

A cell is ``works``, ``refused N`` (a Milvus error with code N, nothing changed) or ``—``
(that front end has no such call)."""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the gRPC tests need pymilvus")
pytest.importorskip("httpx", reason="the server harness needs httpx")

from pymilvus import DataType as PyDataType  # noqa: E402
from pymilvus import MilvusClient as PyMilvus  # noqa: E402
from pymilvus import MilvusException as PyMilvusException  # noqa: E402

import engine  # noqa: E402
from engine.errors import MilvusException  # noqa: E402

from ...conftest import basic_rows, basic_schema, index_params  # noqa: E402
from .harness import ROOT, Server  # noqa: E402

WORKS, NONE = "works", "—"
VEC = basic_rows(1)[0]["vec"]


def refused(code: int) -> str:
    return f"refused {code}"


# feature -> (embedded, gRPC, REST), as the README states it
TABLE: list[tuple[str, str, str, str]] = [
    ("Load & Release, `load_fields`, `skip_load_dynamic_field`", WORKS, WORKS, WORKS),
    ("Partitions: create, load, release, drop", WORKS, WORKS, WORKS),
    ("Search with filter and output fields (FLAT, IVF_FLAT, AUTOINDEX)", WORKS, WORKS, WORKS),
    ("Range search (`radius`, `range_filter`)", WORKS, WORKS, WORKS),
    ("Query, get, `count(*)`", WORKS, WORKS, WORKS),
    ("`query_iterator`, `search_iterator`", NONE, WORKS, NONE),
    ("Filter templates (`filter_params`, `expr_template_values`)", WORKS, WORKS, refused(1100)),
    ("Grouping search (`group_by_field`, `group_size`, `strict_group_size`)", WORKS, WORKS,
     WORKS),
    ("Grouping by several fields (`group_by_fields`)", refused(1100), refused(1100),
     refused(1100)),
    ("Decay and boost rerankers on search (`ranker`, `function_score`, `functionScore`)",
     WORKS, WORKS, WORKS),
    ("Model rerankers (an outside model service)", refused(1100), refused(1100),
     refused(1100)),
    ("Hybrid search (`RRFRanker`, `WeightedRanker`)", WORKS, WORKS, WORKS),
    ("Aliases: create, alter, drop, describe, list; usable as a collection name", WORKS, WORKS,
     WORKS),
    ("Databases: create, list, describe, alter properties, drop; `using_database`, "
     "`db_name=`, `dbName`", WORKS, WORKS, WORKS),
    ("A database that does not exist", refused(800), refused(800), refused(800)),
    ("`replica_number` above the workers there are (one here)", refused(1100), refused(1100),
     refused(1100)),
    ("`mmap.enabled` in index params", refused(1100), refused(1100), refused(1100)),
    ("`add_collection_field` (nullable, optional default), `get_partition_stats`", WORKS,
     WORKS, WORKS),
    ("Collection properties that describe Hotset (`mmap.enabled`, "
     "`collection.autocompaction.enabled` false): create, alter, drop", WORKS, WORKS, WORKS),
    ("Collection properties (`collection.ttl.seconds`, ...)", refused(1100), refused(1100),
     refused(1100)),
    ("`compact` (merge small segments, purge deleted rows), `get_compaction_state`", WORKS,
     WORKS, NONE),
    ("Clustering compaction (`is_clustering=True`)", refused(1100), refused(1100), NONE),
    ("`rename_collection` (also to another database)", WORKS, WORKS, WORKS),
    ("`truncate_collection`", WORKS, WORKS, NONE),
    ("`INT8_VECTOR` fields (FLAT, IVF_FLAT)", WORKS, WORKS, WORKS),
    ("`BINARY_VECTOR` fields (BIN_FLAT, BIN_IVF_FLAT; HAMMING, JACCARD)", WORKS, WORKS,
     WORKS),
    ("`HNSW` (`M`, `efConstruction`; search `ef`)", WORKS, WORKS, WORKS),
    ("`IVF_SQ8`, `IVF_PQ` (`m`; `refine`, search `refine_k`): codes resident, rows on "
     "disk or in host memory", WORKS, WORKS, WORKS),
    ("Nullable vector fields (null rows are in no search result)", WORKS, WORKS, WORKS),
    ("`SPARSE_FLOAT_VECTOR` fields (`SPARSE_INVERTED_INDEX`, `SPARSE_WAND`; IP), alone and "
     "in `hybrid_search`", WORKS, WORKS, WORKS),
    ("Scalar indexes (`STL_SORT`, `INVERTED`, `BITMAP`, `TRIE`) and JSON-path indexes "
     "(`json_path`, `json_cast_type`)", WORKS, WORKS, WORKS),
]


def render() -> str:
    lines = ["| feature | embedded (`engine.MilvusClient`) | gRPC (pymilvus, Node SDK) | "
             "RESTful v2 |", "|---|---|---|---|"]
    lines += [f"| {f} | {e} | {g} | {r} |" for f, e, g, r in TABLE]
    return "\n".join(lines)


def test_every_row_has_its_checks():
    assert len(CHECKS) == len(TABLE)


def test_the_readme_holds_the_table():
    assert render() in (ROOT / "README.md").read_text(), render()


# -- the three front ends ----------------------------------------------------------------
@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("compat") / "data")
    yield s
    s.stop()


def _setup(c) -> None:
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.create_partition("c", "p1")
    c.insert("c", basic_rows(50))


@pytest.fixture(scope="module")
def emb(tmp_path_factory):
    c = engine.MilvusClient(str(tmp_path_factory.mktemp("compat-e") / "d"), device="cpu")
    _setup(c)
    yield c
    c.close()


@pytest.fixture(scope="module")
def grpc_client(srv):
    c = PyMilvus(uri=srv.url)
    schema = PyMilvus.create_schema(enable_dynamic_field=True)
    for f in basic_schema().fields:
        schema.add_field(f.name, f.dtype, is_primary=f.is_primary,
                         **({"dim": f.dim} if f.is_vector else {}),
                         **({"max_length": f.max_length} if f.max_length else {}))
    p = PyMilvus.prepare_index_params()
    p.add_index("vec", "FLAT", metric_type="L2")
    c.create_collection("c", schema=schema, index_params=p)
    c.create_partition("c", "p1")
    c.insert("c", basic_rows(50))
    c.hotset_url = srv.url  # for a second client of the same server
    yield c
    c.close()


def outcome(fn) -> str:
    try:
        fn()
    except (MilvusException, PyMilvusException) as e:
        return refused(e.code)
    return WORKS


def rest(srv, path: str, body: dict) -> str:
    """One REST call on collection c (a body value None leaves that key out)."""
    body = {k: v for k, v in {"collectionName": "c", **body}.items() if v is not None}
    out = srv.post(path, body).json()
    return WORKS if out["code"] == 0 else refused(out["code"])


def _load_fields(c) -> None:
    c.release_collection("c")
    c.load_collection("c", load_fields=["id", "vec"], skip_load_dynamic_field=True)
    assert c.search("c", [VEC], limit=1)[0][0]["id"] == 0
    c.release_collection("c")
    c.load_collection("c")


def _partitions(c) -> None:
    c.create_partition("c", "p2")
    c.release_collection("c")
    c.load_partitions("c", ["p2"])
    c.release_partitions("c", ["p2"])
    c.drop_partition("c", "p2")
    c.load_collection("c")


def _search(c) -> None:
    hits = c.search("c", [VEC], limit=3, filter="age < 40", output_fields=["title"])[0]
    assert hits[0]["id"] == 0 and hits[0]["entity"]["title"] == "t0"


def _range(c) -> None:
    hits = c.search("c", [VEC], limit=5, search_params={"params": {"radius": 1e-3}})[0]
    assert [h["id"] for h in hits] == [0]


def _query(c) -> None:
    assert c.query("c", "age < 3", output_fields=["count(*)"])[0]["count(*)"] == 3
    assert c.get("c", [4], output_fields=["title"])[0]["title"] == "t4"


def _iterators(c) -> None:
    it = c.query_iterator("c", batch_size=7, filter="id >= 0")
    seen = []
    while page := it.next():
        seen += [r["id"] for r in page]
    it.close()
    assert sorted(seen) == list(range(50))
    it = c.search_iterator("c", data=[VEC], batch_size=10, limit=30, anns_field="vec",
                           search_params={"metric_type": "L2"})
    got = []
    while page := it.next():
        got += [h["id"] for h in page]
    it.close()
    assert len(got) == len(set(got)) == 30


def _aliases(c) -> None:
    c.create_alias("c", "a")
    assert c.describe_alias("a")["collection_name"] == "c"
    assert len(c.query("a", "id < 3")) == 3
    assert c.list_aliases("c")["aliases"] == ["a"]
    c.drop_alias("a")


def _templates(c) -> None:
    got = c.query("c", "id in {ids}", filter_params={"ids": [1, 2]}, output_fields=["age"])
    assert sorted(r["id"] for r in got) == [1, 2]


def _ranker(c, reranker: str) -> None:
    from pymilvus import Function, FunctionType

    params = {"reranker": "decay", "function": "gauss", "origin": 0, "scale": 10} \
        if reranker == "decay" else {"reranker": "model", "provider": "tei",
                                     "queries": ["q"], "endpoint": "http://localhost:1"}
    fn = Function(name="d", input_field_names=["age"], function_type=FunctionType.RERANK,
                  params=params)
    c.search("c", [VEC], limit=3, ranker=fn)


def _pymilvus_hybrid():
    from pymilvus import AnnSearchRequest, RRFRanker

    return AnnSearchRequest, RRFRanker


def _hybrid(c, request, ranker) -> None:
    reqs = [request([VEC], "vec", {"metric_type": "L2"}, 5),
            request([VEC], "vec", {"metric_type": "L2"}, 5, "age < 3")]
    hits = c.hybrid_search("c", reqs, ranker(), limit=3, output_fields=["title"])[0]
    assert hits[0]["id"] == 0 and hits[0]["entity"]["title"] == "t0"
    assert hits[0]["distance"] == pytest.approx(2 / 61)


# one (embedded, gRPC, REST) check per row of TABLE, in its order
CHECKS = [
    (lambda e: outcome(lambda: _load_fields(e)), lambda g: outcome(lambda: _load_fields(g)),
        lambda s: _rest_steps(s, [("collections/release", {}), ("collections/load", {
            "loadFields": ["id", "vec"], "skipLoadDynamicField": True}),
            ("collections/release", {}), ("collections/load", {})])),
    (lambda e: outcome(lambda: _partitions(e)), lambda g: outcome(lambda: _partitions(g)),
        lambda s: _rest_steps(s, [
            ("partitions/create", {"partitionName": "p2"}), ("collections/release", {}),
            ("partitions/load", {"partitionNames": ["p2"]}),
            ("partitions/release", {"partitionNames": ["p2"]}),
            ("partitions/drop", {"partitionName": "p2"}), ("collections/load", {})])),
    (lambda e: outcome(lambda: _search(e)), lambda g: outcome(lambda: _search(g)),
        lambda s: rest(s, "entities/search", {"data": [VEC], "limit": 3, "filter": "age < 40",
                                              "outputFields": ["title"]})),
    (lambda e: outcome(lambda: _range(e)), lambda g: outcome(lambda: _range(g)),
        lambda s: rest(s, "entities/search", {"data": [VEC], "limit": 3, "searchParams": {
            "params": {"radius": 1e-3}}})),
    (lambda e: outcome(lambda: _query(e)), lambda g: outcome(lambda: _query(g)),
        lambda s: rest(s, "entities/query", {"filter": "age < 3",
                                             "outputFields": ["count(*)"]})),
    (lambda e: NONE if not hasattr(e, "query_iterator") else WORKS,
        lambda g: outcome(lambda: _iterators(g)), lambda s: NONE),
    (lambda e: outcome(lambda: _templates(e)), lambda g: outcome(lambda: _templates(g)),
        lambda s: rest(s, "entities/query", {"filter": "id in {ids}",
                                             "filterParams": {"ids": [1]}})),
    (lambda e: outcome(lambda: _group(e)), lambda g: outcome(lambda: _group(g)),
        lambda s: rest(s, "entities/search", {"data": [VEC], "limit": 2, "groupingField": "age",
                                              "groupSize": 2})),
    (lambda e: outcome(lambda: e.search("c", [VEC], group_by_fields=["age"])),
        lambda g: outcome(lambda: g.search("c", [VEC], group_by_fields=["age"])),
        lambda s: rest(s, "entities/search", {"data": [VEC], "groupingFields": ["age"]})),
    (lambda e: outcome(lambda: _ranker(e, "decay")), lambda g: outcome(lambda: _ranker(g, "decay")),
        lambda s: rest(s, "entities/search", {"data": [VEC], "functionScore": {
            "functions": [{"name": "d", "type": "Rerank", "inputFieldNames": ["age"],
                           "params": {"reranker": "decay", "function": "exp", "origin": 0,
                                      "scale": 10}}]}})),
    (lambda e: outcome(lambda: _ranker(e, "model")), lambda g: outcome(lambda: _ranker(g, "model")),
        lambda s: rest(s, "entities/search", {"data": [VEC], "functionScore": {
            "functions": [{"name": "d", "type": "Rerank", "inputFieldNames": ["age"],
                           "params": {"reranker": "model", "provider": "tei"}}]}})),
    (lambda e: outcome(lambda: _hybrid(e, engine.AnnSearchRequest, engine.RRFRanker)),
        lambda g: outcome(lambda: _hybrid(g, *_pymilvus_hybrid())),
        lambda s: rest(s, "entities/hybrid_search", {
            "search": [{"data": [VEC], "annsField": "vec", "limit": 5},
                       {"data": [VEC], "annsField": "vec", "limit": 5, "filter": "age < 3"}],
            "rerank": {"strategy": "rrf", "params": {"k": 60}}, "limit": 3})),
    (lambda e: outcome(lambda: _aliases(e)), lambda g: outcome(lambda: _aliases(g)),
         lambda s: _rest_steps(s, [("aliases/create", {"aliasName": "a"}),
                                   ("entities/query", {"collectionName": "a", "filter": "id < 3"}),
                                   ("aliases/describe", {"collectionName": None, "aliasName": "a"}),
                                   ("aliases/drop", {"collectionName": None, "aliasName": "a"})])),
    (lambda e: outcome(lambda: _databases(e)), lambda g: outcome(lambda: _databases(g)),
         lambda s: _rest_steps(s, [
             ("databases/create", {"collectionName": None, "dbName": "db1",
                                   "properties": {"database.max.collections": 3}}),
             ("collections/create", {"collectionName": "in_db1", "dbName": "db1",
                                     "dimension": 4}),
             ("databases/describe", {"collectionName": None, "dbName": "db1"}),
             ("collections/drop", {"collectionName": "in_db1", "dbName": "db1"}),
             ("databases/drop", {"collectionName": None, "dbName": "db1"})])),
    (lambda e: outcome(lambda: engine.MilvusClient(tempfile.mkdtemp(), db_name="other",
                                                       device="cpu")),
         lambda g: outcome(lambda: PyMilvus(uri=g.hotset_url, db_name="other")
                           .list_collections()),
         lambda s: rest(s, "collections/describe", {"dbName": "other"})),
    (lambda e: outcome(lambda: e.load_collection("c", replica_number=2)),
         lambda g: outcome(lambda: g.load_collection("c", replica_number=2)),
         lambda s: rest(s, "collections/load", {"replicaNumber": 2})),
    (lambda e: outcome(lambda: e.create_index("c", _mmap_params(e))),
         lambda g: outcome(lambda: g.create_index("c", _mmap_params(g))),
         lambda s: rest(s, "indexes/create", {"indexParams": [{
             "fieldName": "age", "indexName": "age_i", "params": {"mmap.enabled": True}}]})),
    (lambda e: outcome(lambda: _add_field(e, engine.DataType.INT64)),
         lambda g: outcome(lambda: _add_field(g, PyDataType.INT64)),
         lambda s: _rest_steps(s, [
             ("collections/fields/add", {"schema": {"fieldName": "extra_r", "dataType": "Int64",
                                                    "nullable": True}}),
             ("partitions/get_stats", {"partitionName": "_default"})])),
    (lambda e: outcome(lambda: _properties(e)), lambda g: outcome(lambda: _properties(g)),
         lambda s: _rest_steps(s, [
             ("collections/alter_properties", {"properties": {"mmap.enabled": False}}),
             ("collections/drop_properties", {"propertyKeys": ["mmap.enabled"]})])),
    (lambda e: outcome(lambda: e.create_collection("ttl", dimension=4, properties={
        "collection.ttl.seconds": 60})),
         lambda g: outcome(lambda: g.create_collection("ttl", dimension=4, properties={
             "collection.ttl.seconds": 60})),
         lambda s: rest(s, "collections/create", {"collectionName": "ttl", "dimension": 4,
                                                  "params": {"ttlSeconds": 60}})),
    (lambda e: outcome(lambda: _compact(e)), lambda g: outcome(lambda: _compact(g)),
         lambda s: NONE),
    (lambda e: outcome(lambda: e.compact("c", is_clustering=True)),
         lambda g: outcome(lambda: g.compact("c", is_clustering=True)), lambda s: NONE),
    (lambda e: outcome(lambda: _rename(e)), lambda g: outcome(lambda: _rename(g)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "r1", "dimension": 4}),
             ("collections/rename", {"collectionName": "r1", "newCollectionName": "r2"}),
             ("collections/drop", {"collectionName": "r2"})])),
    (lambda e: outcome(lambda: _truncate(e)), lambda g: outcome(lambda: _truncate(g)),
         lambda s: NONE),
    (lambda e: outcome(lambda: _int8(e, engine.DataType.INT8_VECTOR)),
         lambda g: outcome(lambda: _int8(g, PyDataType.INT8_VECTOR)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "i8", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "v", "dataType": "Int8Vector",
                  "elementTypeParams": {"dim": 2}}]},
                 "indexParams": [{"fieldName": "v", "metricType": "L2", "indexType": "FLAT"}]}),
             ("entities/insert", {"collectionName": "i8", "data": [{"id": 1, "v": [1, -2]}]}),
             ("entities/search", {"collectionName": "i8", "data": [[1, -2]], "limit": 1}),
             ("collections/drop", {"collectionName": "i8"})])),
    (lambda e: outcome(lambda: _binary(e, engine.DataType.BINARY_VECTOR)),
         lambda g: outcome(lambda: _binary(g, PyDataType.BINARY_VECTOR)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "bv", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "v", "dataType": "BinaryVector",
                  "elementTypeParams": {"dim": 16}}]},
                 "indexParams": [{"fieldName": "v", "metricType": "HAMMING",
                                  "indexType": "BIN_IVF_FLAT", "params": {"nlist": 4}}]}),
             ("entities/insert", {"collectionName": "bv", "data": [{"id": 1, "v": [255, 0]}]}),
             ("entities/search", {"collectionName": "bv", "data": [[255, 1]], "limit": 1,
                                  "outputFields": ["v"]}),
             ("collections/drop", {"collectionName": "bv"})])),
    (lambda e: outcome(lambda: _hnsw(e, engine.DataType.FLOAT_VECTOR)),
         lambda g: outcome(lambda: _hnsw(g, PyDataType.FLOAT_VECTOR)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "hn", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "v", "dataType": "FloatVector",
                  "elementTypeParams": {"dim": 2}}]},
                 "indexParams": [{"fieldName": "v", "metricType": "L2", "indexType": "HNSW",
                                  "params": {"M": 8, "efConstruction": 64}}]}),
             ("entities/insert", {"collectionName": "hn", "data": [{"id": 1, "v": [0, 1]},
                                                                   {"id": 2, "v": [1, 1]}]}),
             ("entities/search", {"collectionName": "hn", "data": [[0, 0]], "limit": 2,
                                  "searchParams": {"params": {"ef": 16}}}),
             ("collections/drop", {"collectionName": "hn"})])),
    (lambda e: outcome(lambda: _quantised(e, engine.DataType.FLOAT_VECTOR)),
         lambda g: outcome(lambda: _quantised(g, PyDataType.FLOAT_VECTOR)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "pq", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "v", "dataType": "FloatVector",
                  "elementTypeParams": {"dim": 4}}]},
                 "indexParams": [{"fieldName": "v", "metricType": "L2", "indexType": "IVF_PQ",
                                  "params": {"nlist": 1, "m": 2, "refine": "true"}}]}),
             ("entities/insert", {"collectionName": "pq", "data": [
                 {"id": i, "v": [float(i), 0, 0, 0]} for i in range(300)]}),
             ("entities/search", {"collectionName": "pq", "data": [[10.2, 0, 0, 0]],
                                  "limit": 2, "outputFields": ["v"],
                                  "searchParams": {"params": {"refine_k": 8}}}),
             ("collections/drop", {"collectionName": "pq"})])),
    (lambda e: outcome(lambda: _nullable_vector(e, engine.DataType.FLOAT_VECTOR)),
         lambda g: outcome(lambda: _nullable_vector(g, PyDataType.FLOAT_VECTOR)),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "vt", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "v", "dataType": "FloatVector", "nullable": True,
                  "elementTypeParams": {"dim": 2}}]},
                 "indexParams": [{"fieldName": "v", "metricType": "L2", "indexType": "FLAT"}]}),
             ("entities/insert", {"collectionName": "vt", "data": [{"id": 1, "v": None},
                                                                   {"id": 2, "v": [0, 1]}]}),
             ("entities/search", {"collectionName": "vt", "data": [[0, 0]], "limit": 2}),
             ("collections/drop", {"collectionName": "vt"})])),
    (lambda e: outcome(lambda: _sparse(e, engine.DataType.SPARSE_FLOAT_VECTOR,
                                       engine.AnnSearchRequest, engine.RRFRanker)),
         lambda g: outcome(lambda: _sparse(g, PyDataType.SPARSE_FLOAT_VECTOR,
                                           *_pymilvus_hybrid())),
         lambda s: _rest_steps(s, [
             ("collections/create", {"collectionName": "sv", "schema": {"fields": [
                 {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
                 {"fieldName": "d", "dataType": "FloatVector", "elementTypeParams": {"dim": 2}},
                 {"fieldName": "v", "dataType": "SparseFloatVector"}]},
                 "indexParams": [{"fieldName": "v", "metricType": "IP",
                                  "indexType": "SPARSE_INVERTED_INDEX"},
                                 {"fieldName": "d", "metricType": "L2", "indexType": "FLAT"}]}),
             ("entities/insert", {"collectionName": "sv", "data": [
                 {"id": 1, "d": [0, 0], "v": {"3": 0.5, "40000": 1.0}}]}),
             ("entities/search", {"collectionName": "sv", "data": [{"40000": 2.0}],
                                  "annsField": "v", "limit": 1, "outputFields": ["v"]}),
             ("entities/hybrid_search", {"collectionName": "sv", "search": [
                 {"data": [[0, 0]], "annsField": "d", "limit": 1},
                 {"data": [{"3": 1.0}], "annsField": "v", "limit": 1}],
                 "rerank": {"strategy": "rrf", "params": {"k": 60}}, "limit": 1}),
             ("collections/drop", {"collectionName": "sv"})])),
    (lambda e: outcome(lambda: _scalar_indexes(e)), lambda g: outcome(lambda: _scalar_indexes(g)),
         lambda s: _rest_steps(s, [
             ("indexes/create", {"indexParams": [
                 {"fieldName": "title", "indexName": "title_trie", "indexType": "TRIE"},
                 {"fieldName": "color", "indexType": "INVERTED", "params": {
                     "json_path": "color", "json_cast_type": "varchar"}}]}),
             ("entities/query", {"filter": "title like 't%' and color == 'x'"}),
             ("collections/release", {}), ("indexes/drop", {"indexName": "title_trie"}),
             ("indexes/drop", {"indexName": "color"}), ("collections/load", {})])),
]


def _add_field(c, int64) -> None:
    c.add_collection_field("c", "extra", int64, nullable=True)
    c.get_partition_stats("c", "_default")


def _properties(c) -> None:
    c.alter_collection_properties("c", {"mmap.enabled": False})
    c.drop_collection_properties("c", ["mmap.enabled"])


def _databases(c) -> None:
    c.create_database("db1", properties={"database.max.collections": 3})
    c.use_database("db1")
    c.create_collection("in_db1", dimension=4)
    assert c.list_collections() == ["in_db1"]
    c.alter_database_properties("db1", {"database.force.deny.writing": True})
    assert c.describe_database("db1")["database.force.deny.writing"] == "true"
    c.drop_collection("in_db1")
    c.use_database("default")
    assert "db1" in c.list_databases()
    c.drop_database("db1")


def _vectors(c, dtype, dim: int, index: str, metric: str, row, query, dist: float) -> None:
    """A collection of one vector type: insert ``row``, search ``query``, expect ``dist``."""
    s = c.create_schema()
    s.add_field("id", engine.DataType.INT64, is_primary=True)
    s.add_field("v", dtype, dim=dim)
    p = c.prepare_index_params()
    p.add_index("v", index, metric_type=metric)
    c.create_collection("vt", schema=s, index_params=p)
    c.insert("vt", [{"id": 1, "v": row}])
    assert c.search("vt", [query], limit=1)[0][0]["distance"] == dist
    c.drop_collection("vt")


def _int8(c, int8_vector) -> None:
    v = np.array([1, -2], dtype=np.int8)
    _vectors(c, int8_vector, 2, "FLAT", "L2", v, v, 0)


def _binary(c, binary_vector) -> None:
    _vectors(c, binary_vector, 16, "BIN_IVF_FLAT", "HAMMING", b"\xff\x00", b"\xff\x01", 1)


def _hnsw(c, float_vector) -> None:
    s = c.create_schema()
    s.add_field("id", engine.DataType.INT64, is_primary=True)
    s.add_field("v", float_vector, dim=2)
    p = c.prepare_index_params()
    p.add_index("v", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    c.create_collection("hn", schema=s, index_params=p)
    c.insert("hn", [{"id": i, "v": [float(i), 0.0]} for i in range(300)])
    c.flush("hn")  # sealed: searched through its graph
    hits = c.search("hn", [[10.2, 0.0]], limit=3, search_params={"params": {"ef": 32}})[0]
    assert [h["id"] for h in hits] == [10, 11, 9]
    assert c.describe_index("hn", "v")["index_type"] == "HNSW"
    c.drop_collection("hn")


def _quantised(c, float_vector) -> None:
    for itype, params, sp in (("IVF_SQ8", {"nlist": 2}, {"nprobe": 2}),
                              ("IVF_PQ", {"nlist": 2, "m": 2, "refine": True},
                               {"nprobe": 2, "refine_k": 8})):
        s = c.create_schema()
        s.add_field("id", engine.DataType.INT64, is_primary=True)
        s.add_field("v", float_vector, dim=4)
        p = c.prepare_index_params()
        p.add_index("v", itype, metric_type="L2", params=params)
        c.create_collection("pq", schema=s, index_params=p)
        c.insert("pq", [{"id": i, "v": [float(i), 0.0, 0.0, 0.0]} for i in range(300)])
        c.flush("pq")  # sealed while loaded: coded
        hits = c.search("pq", [[10.2, 0.0, 0.0, 0.0]], limit=2, output_fields=["v"],
                        search_params={"params": sp})[0]
        assert [h["id"] for h in hits] == [10, 11], hits
        assert [float(x) for x in hits[0]["entity"]["v"]] == [10.0, 0.0, 0.0, 0.0]
        assert c.describe_index("pq", "v")["index_type"] == itype
        c.drop_collection("pq")


def _nullable_vector(c, float_vector) -> None:
    s = c.create_schema()
    s.add_field("id", engine.DataType.INT64, is_primary=True)
    s.add_field("v", float_vector, dim=2, nullable=True)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("vt", schema=s, index_params=p)
    c.insert("vt", [{"id": 1, "v": None}, {"id": 2, "v": [0.0, 1.0]}])
    assert [h["id"] for h in c.search("vt", [[0.0, 0.0]], limit=2)[0]] == [2]
    c.drop_collection("vt")


def _sparse(c, sparse_vector, AnnSearch, RRF) -> None:
    s = c.create_schema()
    s.add_field("id", engine.DataType.INT64, is_primary=True)
    s.add_field("d", engine.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("v", sparse_vector)
    p = c.prepare_index_params()
    p.add_index("v", "SPARSE_WAND", metric_type="IP")
    p.add_index("d", "FLAT", metric_type="L2")
    c.create_collection("sv", schema=s, index_params=p)
    c.insert("sv", [{"id": 1, "d": [0.0, 0.0], "v": {3: 0.5, 40000: 1.0}},
                    {"id": 2, "d": [1.0, 1.0], "v": {3: 1.0}}])
    hit = c.search("sv", [{40000: 2.0}], anns_field="v", limit=2, output_fields=["v"])[0]
    assert [(h["id"], h["distance"]) for h in hit] == [(1, 2.0)]
    assert hit[0]["entity"]["v"] == {3: 0.5, 40000: 1.0}
    fused = c.hybrid_search("sv", [AnnSearch([[0.0, 0.0]], "d", {}, limit=2),
                                   AnnSearch([{3: 1.0}], "v", {}, limit=2)],
                            RRF(60), limit=2)[0]
    assert sorted(h["id"] for h in fused) == [1, 2]
    c.drop_collection("sv")


def _scalar_indexes(c) -> None:
    p = c.prepare_index_params()
    p.add_index("title", "TRIE", index_name="title_trie")
    p.add_index("color", "INVERTED", params={"json_path": "color", "json_cast_type": "varchar"})
    c.create_index("c", p)
    c.query("c", "title like 't%' and color == 'x'")
    c.release_collection("c")
    c.drop_index("c", "title_trie")
    c.drop_index("c", "color")
    c.load_collection("c")


def _rename(c) -> None:
    c.create_collection("r1", dimension=4)
    c.insert("r1", [{"id": 1, "vector": [0.1] * 4}])
    c.rename_collection("r1", "r2")
    assert c.query("r2", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 1
    c.drop_collection("r2")


def _truncate(c) -> None:
    c.create_collection("t1", dimension=4)
    c.insert("t1", [{"id": 1, "vector": [0.1] * 4}])
    c.truncate_collection("t1")
    assert c.query("t1", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0
    c.drop_collection("t1")


def _group(c) -> None:
    hits = c.search("c", [VEC], limit=2, group_by_field="age", group_size=2)[0]
    assert hits[0]["id"] == 0 and len({h["entity"]["age"] for h in hits}) == 2


def _compact(c) -> None:
    c.delete("c", ids=[49])
    c.flush("c")
    assert c.get_compaction_state(c.compact("c")) == "Completed"
    assert c.query("c", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 49


def _mmap_params(c):
    p = c.prepare_index_params()
    p.add_index("age", "INVERTED", index_name="age_i", **{"mmap.enabled": True})
    return p


def _rest_steps(s, steps: list[tuple[str, dict]]) -> str:
    """Run REST calls in order: ``works`` if all do, else the first refusal."""
    for path, body in steps:
        got = rest(s, path, body)
        if got != WORKS:
            return got
    return WORKS


@pytest.mark.parametrize("row", range(len(TABLE)), ids=[t[0][:40] for t in TABLE])
def test_each_cell_is_what_the_table_says(row, emb, grpc_client, srv):
    feature, *want = TABLE[row]
    on_emb, on_grpc, on_rest = CHECKS[row]
    got = [on_emb(emb), on_grpc(grpc_client), on_rest(srv)]
    assert got == want, feature

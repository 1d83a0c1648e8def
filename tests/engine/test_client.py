"""The MilvusClient surface: shapes, round trips, errors. Runs on CPU and (gpu) CUDA."""
import numpy as np
import pytest
import torch

from engine import DataType, LoadState, MilvusClient
from engine.errors import DataError, MilvusException

from ..conftest import basic_rows, basic_schema, index_params, make_loaded


def _wal_size(client, name):
    return (client._db.collections[name].path / "wal.log").stat().st_size


def test_quick_create_indexes_and_loads(client):
    client.create_collection("quick", dimension=4)
    assert client.get_load_state("quick") == {"state": LoadState.Loaded}
    assert repr(client.get_load_state("quick")["state"]) == "<LoadState: Loaded>"
    assert str(LoadState.Loaded) == "Loaded"
    res = client.insert("quick", [{"id": 1, "vector": [1, 0, 0, 0], "extra": "x"},
                                  {"id": 2, "vector": [0, 1, 0, 0]}])
    assert res == {"insert_count": 2, "ids": [1, 2]}
    hits = client.search("quick", [[1, 0, 0, 0]], limit=2, output_fields=["extra"])
    assert len(hits) == 1 and hits[0][0]["id"] == 1
    assert set(hits[0][0]) == {"id", "distance", "entity"}
    assert hits[0][0]["entity"] == {"extra": "x"}
    assert hits[0][0]["distance"] == pytest.approx(1.0)  # COSINE similarity, larger first
    assert hits[0][0]["distance"] >= hits[0][1]["distance"]
    assert client.list_indexes("quick") == ["vector"]
    assert client.describe_index("quick", "vector")["metric_type"] == "COSINE"


def test_schema_form_without_index_is_not_loaded(client):
    client.create_collection("c", schema=basic_schema())
    assert client.get_load_state("c") == {"state": LoadState.NotLoad}
    assert client.get_load_state("missing") == {"state": LoadState.NotExist}
    assert client.has_collection("c") and not client.has_collection("missing")
    assert client.list_collections() == ["c"]
    desc = client.describe_collection("c")
    assert [f["name"] for f in desc["fields"]] == ["id", "vec", "title", "score", "age"]
    assert desc["enable_dynamic_field"] is True
    assert desc["fields"][1]["params"] == {"dim": 8}


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_search_matches_numpy_brute_force(client, metric):
    rows = make_loaded(client, n=300, metric=metric)
    client.flush("c")
    client.insert("c", basic_rows(50, start=300, seed=1))  # growing + sealed together
    vecs = np.array([r["vec"] for r in rows] + [r["vec"] for r in basic_rows(50, start=300, seed=1)])
    q = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    hits = client.search("c", q, limit=5, search_params={"metric_type": metric})
    if metric == "L2":
        score = ((q[:, None, :] - vecs[None]) ** 2).sum(-1)
        order = np.argsort(score, axis=1)
    else:
        a, b = q, vecs
        if metric == "COSINE":
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
        score = a @ b.T
        order = np.argsort(-score, axis=1)
    for qi in range(4):
        assert [h["id"] for h in hits[qi]] == order[qi, :5].tolist()
        assert hits[qi][0]["distance"] == pytest.approx(float(score[qi, order[qi, 0]]), rel=1e-4,
                                                        abs=1e-4)


def test_search_output_fields_and_star(client):
    make_loaded(client, n=20)
    hit = client.search("c", [basic_rows(1)[0]["vec"]], limit=1, output_fields=["*"])[0][0]
    assert hit["id"] == 0 and hit["distance"] == pytest.approx(0.0, abs=1e-4)
    assert set(hit["entity"]) == {"id", "vec", "title", "score", "age", "color"}
    assert hit["entity"]["color"] == "red" and len(hit["entity"]["vec"]) == 8
    # an unknown name on a dynamic collection is a dynamic key: absent rows just lack it
    hit = client.search("c", [[0.0] * 8], output_fields=["no_such_key"], limit=1)[0][0]
    assert hit["entity"] == {}
    client.create_collection("nd", schema=basic_schema(dynamic=False), index_params=index_params())
    with pytest.raises(MilvusException) as e:
        client.search("nd", [[0.0] * 8], output_fields=["no_such_field"], limit=1)
    assert e.value.code == 1700 and "field not found[field=no_such_field]" in e.value.message
    q = client.query("c", "id == 3", output_fields=["title", "color", "missing_key"])
    assert q == [{"id": 3, "title": "t3", "color": "red"}]


def test_search_hits_are_ragged_per_query_and_independent(client):
    """Hits come from sealed and growing segments alike, each query keeps only its own
    winners (fewer than limit when the filter leaves fewer), and a row that wins for two
    queries gives two separate entity dicts."""
    rows = make_loaded(client, n=30, flush=True)
    client.insert("c", basic_rows(10, start=30, seed=3))  # growing segment
    q = [rows[4]["vec"], rows[4]["vec"], [0.0] * 8]
    hits = client.search("c", q, limit=6, filter="age in [4, 33, 35]",
                         output_fields=["title", "color"])
    assert [len(h) for h in hits] == [3, 3, 3]
    assert {h["id"] for h in hits[2]} == {4, 33, 35}
    for h in sum(hits, []):  # each hit's fields are its own row's, whichever segment won
        assert h["entity"] == {"title": f"t{h['id'] % 7}",
                               "color": ["red", "green", "blue"][h["id"] % 3]}
    first, second = hits[0][0], hits[1][0]
    assert first["id"] == second["id"] == 4 and first["distance"] == pytest.approx(0, abs=1e-4)
    assert first["entity"] == {"title": "t4", "color": "green"}
    first["entity"]["title"] = "changed"
    assert second["entity"]["title"] == "t4"
    none = client.search("c", q, limit=6, filter="age > 1000")
    assert none == [[], [], []]


def test_growing_rows_searched_between_inserts_keep_exact_distances(client):
    """The growing segment's cached norms are extended, not stale, as rows arrive after
    a search."""
    make_loaded(client, n=10)
    client.search("c", [[0.0] * 8], limit=1)  # norms of the first 10 rows cached
    for start in (10, 2000):
        rows = basic_rows(1500, start=start, seed=start)
        client.insert("c", rows)
        for r in (rows[0], rows[-1]):
            hit = client.search("c", [r["vec"]], limit=1)[0][0]
            assert hit["id"] == r["id"] and hit["distance"] == pytest.approx(0.0, abs=1e-3)
    first = basic_rows(10)[3]  # a row whose norm was cached before the inserts
    hit = client.search("c", [first["vec"]], limit=1)[0][0]
    assert hit["id"] == 3 and hit["distance"] == pytest.approx(0.0, abs=1e-3)


def test_query_get_limit_offset(client):
    make_loaded(client, n=40, flush=True)
    client.insert("c", basic_rows(10, start=40))
    assert [r["id"] for r in client.query("c", "age < 5", output_fields=["age"])] == \
        [0, 1, 2, 3, 4]
    got = client.query("c", "id >= 0", limit=5, offset=38)
    assert [r["id"] for r in got] == [38, 39, 40, 41, 42]
    assert client.get("c", [45, 2, 999]) == [{"id": 2}, {"id": 45}]
    assert client.query("c", "", output_fields=["count(*)"]) == [{"count(*)": 50}]
    assert client.query("c", "age >= 45", output_fields=["count(*)"]) == [{"count(*)": 5}]
    with pytest.raises(MilvusException) as e:
        client.query("c", "")
    assert e.value.code == 1100 and "limit" in e.value.message


def test_upsert_and_delete(client):
    make_loaded(client, n=30)
    client.flush("c")
    r = client.upsert("c", [{**basic_rows(1, start=5)[0], "title": "new"}])
    assert r == {"upsert_count": 1, "ids": [5]}
    assert client.query("c", "id == 5", output_fields=["title"]) == [{"id": 5, "title": "new"}]
    assert client.get_collection_stats("c") == {"row_count": 30}
    assert client.delete("c", ids=[1, 2, 999]) == {"delete_count": 2}
    assert client.delete("c", filter="age >= 25") == {"delete_count": 5}
    assert client.get_collection_stats("c") == {"row_count": 23}
    hits = client.search("c", [basic_rows(2)[1]["vec"]], limit=30)
    assert 1 not in {h["id"] for h in hits[0]} and len(hits[0]) == 23
    client.insert("c", basic_rows(1, start=1))  # re-insert a deleted key: visible again
    assert client.get("c", [1]) == [{"id": 1}]


def test_auto_id_and_string_keys(client):
    s = basic_schema(auto_id=True)
    client.create_collection("a", schema=s, index_params=index_params())
    rows = [{k: v for k, v in r.items() if k != "id"} for r in basic_rows(5)]
    ids = client.insert("a", rows)["ids"]
    assert len(set(ids)) == 5
    ids2 = client.insert("a", rows)["ids"]
    assert not set(ids) & set(ids2)
    with pytest.raises(MilvusException, match="auto_id"):
        client.insert("a", basic_rows(1))
    s2 = MilvusClient.create_schema()
    s2.add_field("k", DataType.VARCHAR, is_primary=True, max_length=10)
    s2.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("s", schema=s2, index_params=index_params("v"))
    client.insert("s", [{"k": "a", "v": [0, 0]}, {"k": "b", "v": [1, 1]}])
    client.flush("s")
    client.insert("s", [{"k": "c", "v": [2, 2]}])
    assert client.search("s", [[1.9, 1.9]], limit=1)[0][0]["k"] == "c"
    assert client.delete("s", ids=["a", "c"]) == {"delete_count": 2}
    assert client.query("s", 'k in ["a", "b", "c"]') == [{"k": "b"}]


def test_columnar_numpy_insert(client):
    client.create_collection("c", schema=basic_schema(), index_params=index_params())
    n = 1000
    vec = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    res = client.insert("c", {"id": np.arange(n), "vec": vec, "title": ["x"] * n,
                              "score": np.linspace(0, 1, n), "age": np.arange(n) % 50})
    assert res["insert_count"] == n
    hits = client.search("c", vec[17:18], limit=1)
    assert hits[0][0]["id"] == 17


ALL_TYPES_DIM = 4


def _all_types_schema():
    s = MilvusClient.create_schema(enable_dynamic_field=True)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("f32", DataType.FLOAT_VECTOR, dim=ALL_TYPES_DIM)
    s.add_field("f16", DataType.FLOAT16_VECTOR, dim=ALL_TYPES_DIM)
    s.add_field("bf16", DataType.BFLOAT16_VECTOR, dim=ALL_TYPES_DIM)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("i64", DataType.INT64)
    s.add_field("fl", DataType.FLOAT)
    s.add_field("db", DataType.DOUBLE)
    s.add_field("b", DataType.BOOL)
    s.add_field("s", DataType.VARCHAR, max_length=16)
    s.add_field("j", DataType.JSON)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT32, max_capacity=4)
    s.add_field("sarr", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=2,
                max_length=3)
    s.add_field("nul", DataType.INT32, nullable=True)
    s.add_field("dflt", DataType.VARCHAR, max_length=8, default_value="dv")
    return s


def _all_types_rows():
    return [
        {"pk": 1, "f32": [0.5, 1, 2, 3], "f16": [0.5, 1, 2, 3], "bf16": [0.5, 1, 2, 3],
         "i8": -128, "i16": 32767, "i32": -5, "i64": 2**62, "fl": 1.5, "db": 1e-300,
         "b": True, "s": "héllo", "j": {"a": [1, {"b": None}]}, "arr": [1, 2, 3],
         "sarr": ["x", "yz"], "nul": None, "extra": {"k": 1}},
        {"pk": 2, "f32": [1, 1, 1, 1], "f16": [1, 1, 1, 1], "bf16": [1, 1, 1, 1],
         "i8": 7, "i16": 0, "i32": 2**31 - 1, "i64": -1, "fl": -0.25, "db": 2.0,
         "b": False, "s": "", "j": [1, "two"], "arr": [], "sarr": [], "nul": 9,
         "dflt": "given"},
    ]


def _expected_all_types():
    rows = _all_types_rows()
    rows[0]["dflt"] = "dv"
    rows[0]["f32"] = [0.5, 1.0, 2.0, 3.0]
    for r in rows:
        for k in ("f32", "f16", "bf16"):
            r[k] = [float(x) for x in r[k]]
    return rows


def _check_all_types(client):
    got = client.query("t", "pk >= 1", output_fields=["*"])
    assert got == _expected_all_types()


def test_every_type_round_trips_through_flush_and_reopen(tmp_path, device):
    path = str(tmp_path / "d")
    c = MilvusClient(path, device=device)
    p = MilvusClient.prepare_index_params()
    for f in ("f32", "f16", "bf16"):
        p.add_index(f, "FLAT", metric_type="L2")
    c.create_collection("t", schema=_all_types_schema(), index_params=p)
    c.insert("t", _all_types_rows())
    _check_all_types(c)  # growing segment
    c.close()  # flushes
    c = MilvusClient(path, device=device)
    c.load_collection("t")
    _check_all_types(c)  # sealed segment, reopened
    hit = c.search("t", [[1, 1, 1, 1]], anns_field="bf16", limit=1, output_fields=["j"])
    assert hit[0][0] == {"pk": 2, "distance": 0.0, "entity": {"j": [1, "two"]}}
    c.close()


def test_wal_replay_restores_unflushed_rows(tmp_path):
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    make_loaded(c, n=10)
    c.delete("c", ids=[3])
    c.upsert("c", [{**basic_rows(1, start=4)[0], "title": "up"}])
    # simulate a crash: drop the client without close() (no flush), release the lock
    c._db._dir.close()
    c2 = MilvusClient(path, device="cpu")
    c2.load_collection("c")
    assert c2.get_collection_stats("c") == {"row_count": 9}
    assert c2.get("c", [3]) == []
    assert c2.get("c", [4], output_fields=["title"]) == [{"id": 4, "title": "up"}]
    c2.close()


@pytest.mark.parametrize("bad, code, fragment", [
    ({"id": 1, "vec": [1.0] * 7, "title": "a", "score": 1.0, "age": 1}, 1100, "dim"),
    ({"vec": [1.0] * 8, "title": "a", "score": 1.0, "age": 1}, 1100, "missed an field `id`"),
    ({"id": 1, "vec": [1.0] * 8, "title": 5, "score": 1.0, "age": 1}, 1100, "VARCHAR"),
    ({"id": 1, "vec": [1.0] * 8, "title": "a", "score": "x", "age": 1}, 1100, "DOUBLE"),
    ({"id": 1, "vec": [1.0] * 8, "title": "a", "score": 1.0, "age": 1.5}, 1100, "INT32"),
    ({"id": 1, "vec": [1.0] * 8, "title": "a", "score": 1.0, "age": 2**40}, 1100, "range"),
    ({"id": 1, "vec": [1.0] * 8, "title": "a" * 33, "score": 1.0, "age": 1}, 1100,
     "exceeds max length"),
    ({"id": "k", "vec": [1.0] * 8, "title": "a", "score": 1.0, "age": 1}, 1100, "INT64"),
    ({"id": 1, "vec": ["a"] * 8, "title": "a", "score": 1.0, "age": 1}, 1100, "vec"),
    ({"id": 1, "vec": [1.0] * 7 + [float("nan")], "title": "a", "score": 1.0, "age": 1}, 1100,
     "row 1 holds NaN or infinity"),
    ({"id": 1, "vec": [float("-inf")] + [1.0] * 7, "title": "a", "score": 1.0, "age": 1}, 1100,
     "NaN or infinity"),
])
def test_bad_rows_rejected_and_nothing_written(client, bad, code, fragment):
    make_loaded(client, n=5)
    before = (client.get_collection_stats("c"), _wal_size(client, "c"))
    with pytest.raises(MilvusException) as e:
        client.insert("c", [basic_rows(1, start=100)[0], bad])
    assert e.value.code == code and fragment in e.value.message
    with pytest.raises(MilvusException):
        client.upsert("c", [bad])
    assert (client.get_collection_stats("c"), _wal_size(client, "c")) == before


def test_upsert_refuses_a_key_twice_and_empty_writes_count_zero(client):
    make_loaded(client, n=5)
    before = (client.get_collection_stats("c"), _wal_size(client, "c"))
    rows = basic_rows(3, start=10)
    with pytest.raises(MilvusException) as e:
        client.upsert("c", [*rows, {**rows[1], "title": "again"}])
    assert e.value.code == 1100 and "primary key 11 more than once" in e.value.message
    assert (client.get_collection_stats("c"), _wal_size(client, "c")) == before
    assert client.insert("c", []) == {"insert_count": 0, "ids": []}
    assert client.upsert("c", []) == {"upsert_count": 0, "ids": []}
    assert (client.get_collection_stats("c"), _wal_size(client, "c")) == before
    client.create_collection("s", dimension=4, id_type="string", max_length=8)
    vec = [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(MilvusException, match="primary key 'b' more than once"):
        client.upsert("s", [{"id": k, "vector": vec} for k in ["c", "b", "a", "b", "c"]])
    assert client.upsert("s", [{"id": k, "vector": vec} for k in "abc"])["upsert_count"] == 3


def test_non_finite_vectors_rejected_in_columns_and_half_precision(cpu_client):
    """Columnar inserts are checked too, and a FLOAT16 value beyond 65504 (inf once cast)
    is refused like an inf; large finite float32 values whose sum overflows are fine."""
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("h", DataType.FLOAT16_VECTOR, dim=4)
    cpu_client.create_collection("c", schema=s)
    vecs = np.ones((6, 4), dtype=np.float32)
    vecs[4, 2] = np.nan
    with pytest.raises(MilvusException, match="field v: row 4 holds NaN"):
        cpu_client.insert("c", {"id": np.arange(6), "v": vecs, "h": np.ones((6, 4))})
    big = np.ones((6, 4))
    big[2, 0] = 1e6
    with pytest.raises(MilvusException, match="field h: row 2 holds NaN or infinity"):
        cpu_client.insert("c", {"id": np.arange(6), "v": np.ones((6, 4)), "h": big})
    huge = np.full((6, 4), 3e38, dtype=np.float32)  # finite; their sum is not
    assert cpu_client.insert("c", {"id": np.arange(6), "v": huge,
                                   "h": np.ones((6, 4))})["insert_count"] == 6
    assert cpu_client.get_collection_stats("c") == {"row_count": 6}


def test_unexpected_field_without_dynamic(client):
    client.create_collection("nd", schema=basic_schema(dynamic=False), index_params=index_params())
    with pytest.raises(MilvusException, match="unexpected field `color`") as e:
        client.insert("nd", basic_rows(2))
    assert e.value.code == 1100 and client.get_collection_stats("nd") == {"row_count": 0}


def test_unknown_collection_and_not_loaded_errors(client):
    with pytest.raises(MilvusException) as e:
        client.insert("nope", basic_rows(1))
    assert e.value.code == 100
    client.create_collection("c", schema=basic_schema())
    for call in (lambda: client.search("c", [[0] * 8]), lambda: client.query("c", "id > 0"),
                 lambda: client.get("c", [1])):
        with pytest.raises(MilvusException) as e:
            call()
        assert e.value.code == 101 and "collection not loaded[collection=c]" in e.value.message
    assert client.insert("c", basic_rows(3))["insert_count"] == 3  # writes work unloaded
    assert client.delete("c", ids=[0]) == {"delete_count": 1}
    with pytest.raises(MilvusException) as e:
        client.load_collection("c")
    assert e.value.code == 700 and "index not found[collection=c]" in e.value.message


def test_search_argument_errors(client):
    make_loaded(client, n=5)
    for kwargs, fragment in [({"data": [[0] * 7]}, "dim"), ({"data": [[0] * 8], "limit": 0}, "limit"),
                             ({"data": [[0] * 8], "limit": 16385}, "limit"),
                             ({"data": [[0] * 8], "search_params": {"metric_type": "IP"}},
                              "metric type not match"),
                             ({"data": [[0] * 8], "filter": "age >"}, "cannot parse"),
                             ({"data": []}, r"nq .* got 0"),
                             ({"data": [[0] * 8, [0] * 7 + [float("nan")]]},
                              "search vector 1 holds NaN"),
                             ({"data": np.full((1, 8), np.inf, dtype=np.float32)}, "infinity"),
                             ({"data": [[0] * 8], "anns_field": "title"}, "field not found")]:
        with pytest.raises(MilvusException, match=fragment):
            client.search("c", **kwargs)


def test_search_round_decimal_ignore_growing_and_refused_keywords(client):
    rows = make_loaded(client, n=20, flush=True)          # sealed
    client.insert("c", basic_rows(5, start=100, seed=9))  # growing
    q = [rows[0]["vec"]]
    exact = client.search("c", q, limit=30)[0]
    rounded = client.search("c", q, limit=30, round_decimal=2)[0]
    assert [h["id"] for h in rounded] == [h["id"] for h in exact]
    assert [h["distance"] for h in rounded] == [round(h["distance"], 2) for h in exact]
    assert any(h["distance"] != round(h["distance"], 2) for h in exact)  # it did round
    for how in ({"ignore_growing": True}, {"search_params": {"ignore_growing": True}}):
        ids = {h["id"] for h in client.search("c", q, limit=30, **how)[0]}
        assert ids == set(range(20))
    assert {h["id"] for h in exact} == {*range(20), *range(100, 105)}
    for kwargs in ({"round_decimal": 7}, {"round_decimal": "2"}, {"group_by_fields": ["age"]},
                   {"group_size": 2}, {"order_by_fields": [{"field": "age"}]}):
        with pytest.raises(MilvusException) as e:
            client.search("c", q, limit=3, **kwargs)
        assert e.value.code == 1100 and next(iter(kwargs)) in e.value.message


def test_uri_must_be_a_directory(tmp_path):
    with pytest.raises(MilvusException, match="python -m engine serve"):
        MilvusClient("http://localhost:19530")
    with pytest.raises(MilvusException, match="CUDA is not available") if not \
            torch.cuda.is_available() else pytest.raises(MilvusException, match="does not exist"):
        MilvusClient(str(tmp_path / "x"), device="cuda:7" if torch.cuda.is_available() else "cuda")


@pytest.mark.parametrize("kw,named", [({"heartbeat_s": 1.0}, "heartbeat_s"),
                                      ({"ray_address": "auto"}, "ray_address"),
                                      ({"ray_workers": 0, "heartbeat_s": 2}, "heartbeat_s")])
def test_ray_settings_without_ray_workers_are_refused(tmp_path, kw, named):
    """Settings of Ray workers given to a client that has none would do nothing: refused,
    and the data directory is not created."""
    with pytest.raises(MilvusException, match=f"{named} apply to Ray workers only") as e:
        MilvusClient(str(tmp_path / "d"), device="cpu", **kw)
    assert e.value.code == 1100
    assert not (tmp_path / "d").exists()


def test_directory_lock_blocks_second_writer(tmp_path):
    import subprocess
    import sys

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    code = ("from engine import MilvusClient\n"
            "from engine.errors import DirectoryLocked\n"
            "try:\n    MilvusClient(r'%s', device='cpu')\nexcept DirectoryLocked as e:\n"
            "    print('LOCKED', e.code, e.message)\n" % str(tmp_path / "d"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "LOCKED 65535" in out.stdout and "in use by pid" in out.stdout
    c.close()
    again = MilvusClient(str(tmp_path / "d"), device="cpu")  # free after close
    again.close()


def test_index_lifecycle(client):
    client.create_collection("c", schema=basic_schema())
    client.create_index("c", index_params())
    client.create_index("c", index_params())  # same spec again: no-op
    other = MilvusClient.prepare_index_params()
    other.add_index("vec", "FLAT", metric_type="IP")
    with pytest.raises(MilvusException, match="at most one distinct index"):
        client.create_index("c", other)
    scalar = MilvusClient.prepare_index_params()
    scalar.add_index("age", "STL_SORT", index_name="age_idx")
    client.create_index("c", scalar)
    assert client.list_indexes("c") == ["vec", "age_idx"]
    assert client.describe_index("c", "vec")["index_type"] == "FLAT"
    client.load_collection("c")
    with pytest.raises(MilvusException) as e:
        client.drop_index("c", "vec")
    assert e.value.code == 65535 and "release it first" in e.value.message
    client.release_collection("c")
    client.drop_index("c", "vec")
    assert client.list_indexes("c") == ["age_idx"]
    with pytest.raises(MilvusException) as e:
        client.describe_index("c", "vec")
    assert e.value.code == 700


def test_drop_collection_removes_everything(client):
    make_loaded(client, n=10, flush=True)
    path = client._db.collections["c"].path
    client.drop_collection("c")
    assert not client.has_collection("c")
    assert client.memory_info("c") == {"bytes": 0, "parts": {}}
    assert not path.exists()
    assert list(path.parent.iterdir()) == []
    client.drop_collection("c")  # idempotent


def test_create_collection_twice(client):
    client.create_collection("c", schema=basic_schema())
    client.create_collection("c", schema=basic_schema())  # same schema: no-op
    with pytest.raises(MilvusException, match="different parameters"):
        client.create_collection("c", schema=basic_schema(dim=4))


def test_delete_in_one_partition_only(tmp_path, device):
    path = str(tmp_path / "d")
    c = MilvusClient(path, device=device)
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.create_partition("c", "p1")
    c.insert("c", basic_rows(3))                        # keys 0..2 in _default
    c.insert("c", basic_rows(3), partition_name="p1")   # the same keys in p1
    c.flush("c")
    assert c.delete("c", ids=[1], partition_name="p1") == {"delete_count": 1}
    assert c.delete("c", filter="id == 2", partition_name="_default") == {"delete_count": 1}
    def ids(part):
        return sorted(r["id"] for r in c.query("c", "id >= 0", partition_names=[part]))
    assert ids("_default") == [0, 1] and ids("p1") == [0, 2]
    c.close()  # the deletes are sealed with their partition
    c = MilvusClient(path, device=device)
    c.load_collection("c")
    assert ids("_default") == [0, 1] and ids("p1") == [0, 2]
    with pytest.raises(MilvusException) as e:
        c.delete("c", ids=[0], partition_name="nope")
    assert e.value.code == 200
    assert c.delete("c", ids=[0]) == {"delete_count": 2}  # no partition: every partition
    c.close()


def test_schema_output_spec_and_segments_for_servers(client):
    """The public accessors the protocol servers use instead of client internals."""
    make_loaded(client, n=20, flush=True)
    schema = client.collection_schema("c")
    assert schema.primary.name == "id" and [f.name for f in schema.fields][:2] == ["id", "vec"]
    spec = client.output_spec("c", ["title", "color"])
    assert spec.fields == ("title",) and spec.dynamic_keys == ("color",)
    assert client.output_spec("c", ["*"]).all_dynamic
    segs = client.persistent_segments("c")
    assert sum(s["num_rows"] for s in segs) == 20 and {s["partition"] for s in segs} == {"_default"}
    client.release_collection("c")
    client.load_collection("c", load_fields=["id", "vec"])
    with pytest.raises(MilvusException) as e:
        client.output_spec("c", ["title"])  # not loaded: the same error search gives
    assert "not loaded" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.collection_schema("missing")
    assert e.value.code == 100


def test_json_nested_past_the_limit_is_refused_and_filters_keep_working(cpu_client):
    from engine.columns import MAX_JSON_DEPTH

    c = cpu_client
    s = basic_schema()
    s.add_field("meta", DataType.JSON)
    c.create_collection("j", schema=s, index_params=index_params())
    deep = {}
    node = deep
    for _ in range(400):
        node["a"] = {}
        node = node["a"]
    ok = [{**r, "meta": {"n": i}} for i, r in enumerate(basic_rows(3))]
    c.insert("j", ok)
    for row in ({**basic_rows(1, start=9)[0], "meta": deep},
                {**basic_rows(1, start=9)[0], "meta": {"n": 1}, "dyn": deep}):
        with pytest.raises(DataError) as e:
            c.insert("j", [ok[0] | {"id": 8}, row])
        assert e.value.code == 1100 and "row 1" in e.value.message
        assert f"more than {MAX_JSON_DEPTH} levels" in e.value.message
    at_limit = {}
    node = at_limit
    for _ in range(MAX_JSON_DEPTH - 1):
        node["a"] = {}
        node = node["a"]
    c.insert("j", [{**basic_rows(1, start=20)[0], "meta": at_limit}])
    assert c.get_collection_stats("j") == {"row_count": 4}
    assert len(c.query("j", 'meta["n"] >= 0')) == 3
    assert len(c.query("j", 'meta["a"]["a"] is not null')) == 1


def test_milvus_wording_and_codes_of_common_errors(cpu_client):
    c = cpu_client
    make_loaded(c, n=5)
    with pytest.raises(MilvusException) as e:
        c.describe_collection("nope")
    assert e.value.code == 100
    assert e.value.message.startswith("collection not found[database=default][collection=nope]")
    with pytest.raises(MilvusException) as e:
        c.query("c", "title like 'a\\\\'")  # the pattern a\ : an escape with nothing after
    assert e.value.code == 1100 and "escape character" in e.value.message
    assert c.query("c", "title like 'a\\\\\\\\'") == []  # a\\ : an escaped backslash


def test_upsert_into_auto_id_allocates_new_keys_and_replaces_the_given_ones(tmp_path):
    """As Milvus: the given key says which row is replaced, the row comes back under a new
    key (it kept the given key); one WAL record, so a reopen replays the same."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    c.create_collection("a", schema=basic_schema(auto_id=True), index_params=index_params())
    rows = [{k: v for k, v in r.items() if k != "id"} for r in basic_rows(4)]
    ids = c.insert("a", rows)["ids"]
    res = c.upsert("a", [{**rows[1], "id": ids[1], "title": "new"}])
    assert res["upsert_count"] == 1 and res["ids"][0] not in ids
    assert c.get("a", [ids[1]]) == []
    assert c.get("a", res["ids"], output_fields=["title"]) == [{"id": res["ids"][0],
                                                                  "title": "new"}]
    assert c.get_collection_stats("a") == {"row_count": 4}
    for k in range(2):  # growing, then after a reopen (WAL replay), then sealed
        c.close()
        c = MilvusClient(path, device="cpu")
        c.load_collection("a")
        got = sorted(r["id"] for r in c.query("a", "id >= 0"))
        assert got == sorted([ids[0], *ids[2:], res["ids"][0]])
        if k == 0:
            c.flush("a")
    c.close()


def test_ignore_growing_on_query_and_search(cpu_client):
    c = cpu_client
    rows = make_loaded(c, n=10, flush=True)
    c.insert("c", basic_rows(5, start=100))  # growing
    count = c.query("c", "id >= 0", output_fields=["count(*)"], ignore_growing=True)
    assert count == [{"count(*)": 10}]
    assert len(c.query("c", "id >= 0", ignore_growing=True)) == 10
    assert len(c.query("c", "id >= 0")) == 15
    hits = c.search("c", [rows[0]["vec"]], limit=15, ignore_growing=True)[0]
    assert len(hits) == 10 and all(h["id"] < 100 for h in hits)


def test_collection_properties_are_refused_not_ignored(cpu_client):
    """A TTL or mmap property would change what is stored or returned: refused with 1100
    and nothing created, never silently dropped."""
    from engine.errors import ParamError

    with pytest.raises(ParamError, match="collection.ttl.seconds"):
        cpu_client.create_collection("c", dimension=4,
                                     properties={"collection.ttl.seconds": 60})
    assert cpu_client.list_collections() == []


def test_rename_collection_keeps_rows_load_state_and_aliases(tmp_path):
    from engine import LoadState

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("old", schema=basic_schema(), index_params=index_params())
    c.insert("old", basic_rows(20))
    c.create_alias("old", "al")
    c.rename_collection("old", "new")
    assert c.list_collections() == ["new"] and not c.has_collection("old")
    assert c.get_load_state("new") == {"state": LoadState.Loaded}
    assert c.query("new", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 20}]
    assert c.describe_alias("al")["collection_name"] == "new"
    assert set(c.memory_info()["collections"]) == {"new"}
    with pytest.raises(MilvusException):
        c.rename_collection("new", "al")  # taken by an alias
    with pytest.raises(MilvusException) as e:
        c.rename_collection("new", "x", target_db="other")
    assert e.value.code == 800
    c.close()
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.load_collection("new")
    assert c.query("new", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 20}]
    c.close()


def test_truncate_collection_removes_rows_and_keeps_the_rest(tmp_path):
    from engine import LoadState

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", "IVF_FLAT", metric_type="L2", params={"nlist": 4})
    c.create_collection("t", schema=basic_schema(), index_params=p)
    c.create_partition("t", "p1")
    c.insert("t", basic_rows(300))
    c.flush("t")
    c.truncate_collection("t")
    assert c.get_load_state("t") == {"state": LoadState.Loaded}
    assert c.query("t", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 0}]
    assert c.get_collection_stats("t") == {"row_count": 0}
    assert c.list_partitions("t") == ["_default", "p1"] and c.list_indexes("t") == ["vec"]
    assert len(list((tmp_path / "d" / "collections").iterdir())) == 1
    c.insert("t", basic_rows(300, start=1000))  # trained again from the new rows
    c.flush("t")
    assert c.query("t", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 300}]
    assert c._db.collections["t"].sealed[0].layout_field == "vec"
    c.close()

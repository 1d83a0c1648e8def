"""engine/search.py: result rows are built with Python's cyclic collector paused (they
hold no cycles; with it on, a large result spends most of its time in collections), and the
collector's state is given back as it was."""
import gc

import pytest

from engine import search as search_mod

from engine.errors import ParamError

from ..conftest import basic_rows, basic_schema, index_params, make_loaded, reindex


@pytest.mark.parametrize("was_on", [True, False])
def test_search_and_query_build_rows_with_gc_paused_and_restore_it(cpu_client, monkeypatch,
                                                                    was_on):
    rows = make_loaded(cpu_client, n=40)
    seen = []
    for name in ("_assemble", "_query_rows"):
        real = getattr(search_mod, name)

        def spy(*a, _real=real, **k):
            seen.append(gc.isenabled())
            return _real(*a, **k)

        monkeypatch.setattr(search_mod, name, spy)
    if not was_on:
        gc.disable()
    try:
        hits = cpu_client.search("c", [rows[3]["vec"]], limit=5, output_fields=["title"])
        got = cpu_client.query("c", "id < 4", output_fields=["title"])
        assert gc.isenabled() is was_on
    finally:
        gc.enable()
    assert seen == [False, False]
    assert hits[0][0]["id"] == 3 and hits[0][0]["entity"] == {"title": rows[3]["title"]}
    assert sorted(r["id"] for r in got) == [0, 1, 2, 3]


def test_gc_is_restored_when_building_rows_fails(monkeypatch):
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with search_mod._gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_query_with_a_limit_pages_in_primary_key_order_on_ivf(cpu_client):
    """IVF_FLAT stores rows in list order; a query with a limit returns them in key order
    (as Milvus does), so paging with `id > last` sees every row exactly once."""
    c = cpu_client
    c.create_collection("v", schema=basic_schema(), index_params=index_params())
    rows = basic_rows(202)
    c.insert("v", rows[:150])
    c.flush("v")
    c.release_collection("v")
    reindex(c, "v", nlist=8)
    c.load_collection("v")
    c.insert("v", rows[150:])  # growing rows too
    seen, last = [], -1
    while True:
        page = c.query("v", f"id > {last}", output_fields=["id"], limit=13)
        if not page:
            break
        keys = [r["id"] for r in page]
        assert keys == sorted(keys)
        seen += keys
        last = keys[-1]
    assert seen == list(range(202))
    assert [r["id"] for r in c.query("v", "id >= 0", limit=5, offset=10)] == list(range(10, 15))
    assert c.query("v", "id < 3", output_fields="title", limit=3) == [
        {"id": i, "title": rows[i]["title"]} for i in range(3)]
    with pytest.raises(ParamError, match="offset must be a non-negative integer"):
        c.query("v", "id >= 0", limit=3, offset=-1)
    with pytest.raises(ParamError, match="offset must be a non-negative integer"):
        c.search("v", [rows[0]["vec"]], limit=3, offset=-2)
    with pytest.raises(ParamError, match="max query result window"):
        c.query("v", "id >= 0", limit=16000, offset=1000)

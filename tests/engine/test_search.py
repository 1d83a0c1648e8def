"""engine/search.py: result rows are built with Python's cyclic collector paused (they
hold no cycles; with it on, a large result spends most of its time in collections), and the
collector's state is given back as it was."""
import gc

import pytest

from engine import search as search_mod

from ..conftest import make_loaded


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

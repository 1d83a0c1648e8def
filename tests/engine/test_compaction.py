"""compact(): small sealed segments merged, deleted rows purged, delete files that apply
to nothing dropped; the same live rows before and after, loaded or not, reopened too, and
rows of an IVF collection still in list order."""
from __future__ import annotations

import pytest

from engine import LoadState, MilvusClient
from engine.errors import ParamError

from ..conftest import basic_rows, basic_schema, index_params


def _rows(c):
    return sorted((r["id"], r["title"]) for r in c.query("c", "id >= 0",
                                                          output_fields=["title"]))


@pytest.mark.parametrize("index", ["FLAT", "IVF_FLAT"])
def test_compaction_keeps_the_live_rows_and_drops_the_rest(tmp_path, index):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", index, metric_type="L2", params={"nlist": 4} if index != "FLAT" else {})
    c.create_collection("c", schema=basic_schema(), index_params=p)
    for i in range(5):  # five small segments
        c.insert("c", basic_rows(40, start=40 * i, seed=i))
        c.flush("c")
    c.delete("c", filter="age < 10")
    c.upsert("c", [{**basic_rows(1, start=3)[0], "title": "again"}])
    c.flush("c")
    before = _rows(c)
    q = basic_rows(1, start=77, seed=1)[0]["vec"]
    hits_before = c.search("c", [q], limit=5, search_params={"params": {"nprobe": 4}})
    segs = c.persistent_segments("c")
    deletes = sorted((tmp_path / "d").glob("collections/*/deletes/*"))
    assert len(segs) == 6 and deletes
    job = c.compact("c")
    assert c.get_compaction_state(job) == "Completed"
    assert c.get_load_state("c")["state"] == LoadState.Loaded  # reloaded from disk
    after = c.persistent_segments("c")
    assert len(after) == 1 and after[0]["num_rows"] == len(before)
    assert not sorted((tmp_path / "d").glob("collections/*/deletes/*"))
    assert _rows(c) == before
    assert c.search("c", [q], limit=5, search_params={"params": {"nprobe": 4}}) == hits_before
    coll = c._db.collections["c"]
    if index != "FLAT":
        assert coll.sealed[0].layout_field == "vec"
    info = c.memory_info()
    assert info["used_bytes"] == info["collections"]["c"]["bytes"]
    c.close()
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.load_collection("c")
    assert _rows(c) == before
    c.close()


def test_compaction_refusals(cpu_client):
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    with pytest.raises(ParamError, match="clustering"):
        c.compact("c", is_clustering=True)
    with pytest.raises(ParamError, match="target_size"):
        c.compact("c", target_size=0)
    assert c.get_compaction_state(12345) == "UndefiedState"
    assert c.get_compaction_state(c.compact("c")) == "Completed"  # nothing to do is fine

"""engine/workers.py: a database served from several in-process workers ("cpu" workers
here; one per GPU on a multi-GPU box) answers exactly as one device does: sealed segments
placed across them by bytes, growing rows on the coordinator, a load that fits nowhere
refused whole (1400, each worker's free bytes named), release freeing every worker."""
import numpy as np
import pytest

from engine import LoadState, MilvusClient
from engine.errors import MilvusException

from ..conftest import basic_rows, basic_schema


def _client(tmp_path, name, devices, **kw):
    return MilvusClient(str(tmp_path / name), devices=devices, **kw)


def _fill(c, index, segments=4, per=150):
    c.create_collection("c", schema=basic_schema(dim=16))
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", index, metric_type="L2", params={"nlist": 8} if "IVF" in index else {})
    c.create_index("c", p)
    for s in range(segments):  # one sealed segment a flush
        c.insert("c", basic_rows(per, dim=16, start=s * per, seed=s))
        c.flush("c")
    c.delete("c", filter="id in [3, 160, 400]")


def _searches(c):
    q = np.random.default_rng(9).standard_normal((4, 16)).astype(np.float32).tolist()
    out = []
    for flt in ("", "age > 10 and title != 't3'"):
        hits = c.search("c", data=q, limit=7, filter=flt, output_fields=["title", "score"],
                        search_params={"params": {"nprobe": 4}})
        out.append([[(h["id"], round(h["distance"], 4), h["entity"]["title"]) for h in r]
                    for r in hits])
    out.append(sorted(r["id"] for r in c.query("c", filter="age < 5", output_fields=["id"])))
    return out


@pytest.mark.parametrize("index", ["FLAT", "IVF_FLAT"])
def test_several_workers_answer_as_one_device(tmp_path, index):
    got = {}
    for name, devices in (("one", ["cpu"]), ("three", ["cpu", "cpu", "cpu"])):
        c = _client(tmp_path, name, devices)
        _fill(c, index)
        c.load_collection("c")
        c.insert("c", basic_rows(20, dim=16, start=10_000, seed=7))  # growing, after load
        c.delete("c", filter="id in [10001, 5]")
        got[name] = _searches(c)
        if name == "three":
            info = c.memory_info()
            used = {w["name"]: w["collections"].get("c", {}).get("bytes", 0)
                    for w in info["workers"]}
            assert all(used.values()), used            # every worker holds segments
            assert info["collections"]["c"]["bytes"] == sum(used.values())
            assert set(c.memory_info("c")["workers"]) == {"cpu/0", "cpu/1", "cpu/2"}
            c.release_collection("c")
            assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
        c.close()
    assert got["one"] == got["three"]


def test_segments_spread_by_bytes(tmp_path):
    c = _client(tmp_path, "d", ["cpu", "cpu"])
    _fill(c, "FLAT", segments=6)
    c.load_collection("c")
    res = c._db.residency.get("c")
    on = {}
    for rs in res.segments.values():
        w = c._db.workers.holding(rs.allocator).name
        on[w] = on.get(w, 0) + 1
    assert on == {"cpu/0": 3, "cpu/1": 3}
    # seals after the load go to the roomiest worker, not all to the coordinator
    for s in range(2):
        c.insert("c", basic_rows(150, dim=16, start=5000 + 150 * s, seed=20 + s))
        c.flush("c")
    placed = [c._db.workers.holding(rs.allocator).name for rs in res.segments.values()]
    assert placed.count("cpu/0") == placed.count("cpu/1") == 4
    c.close()


def test_a_load_that_fits_nowhere_is_refused_whole(tmp_path):
    c = _client(tmp_path, "d", ["cpu", "cpu"], memory_limit=30_000)
    _fill(c, "FLAT", segments=4, per=150)       # 4 segments of ~14 KB: 2 fit a worker
    c.insert("c", basic_rows(150, dim=16, start=900, seed=5))
    c.flush("c")                                # a fifth fits nowhere
    with pytest.raises(MilvusException) as e:
        c.load_collection("c")
    assert e.value.code == 1400
    assert "cpu/0 " in e.value.message and "cpu/1 " in e.value.message
    assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    c.close()


def test_partial_load_and_partitions_over_workers(tmp_path):
    c = _client(tmp_path, "d", ["cpu", "cpu"])
    _fill(c, "FLAT")
    c.load_collection("c", load_fields=["id", "vec", "age"])
    hits = c.search("c", data=[[0.0] * 16], limit=3, filter="age > 3", output_fields=["age"])
    assert len(hits[0]) == 3 and all(h["entity"]["age"] > 3 for h in hits[0])
    parts = c.memory_info("c")["parts"]
    assert "vec" in parts and "title" not in parts
    c.close()


def test_devices_are_checked(tmp_path):
    with pytest.raises(MilvusException, match="non-empty list"):
        _client(tmp_path, "a", "cpu")
    with pytest.raises(MilvusException, match="non-empty list"):
        _client(tmp_path, "b", [])


def test_another_database_shares_the_workers(tmp_path):
    c = _client(tmp_path, "d", ["cpu", "cpu"])
    c.create_database("other")
    c.using_database("other")
    _fill(c, "FLAT")
    c.load_collection("c")
    info = c.memory_info()
    assert "other/c" in info["collections"]
    assert all(w["collections"].get("other/c") for w in info["workers"])
    c.close()


def test_replicas_on_distinct_workers_spread_searches_and_take_deletes(tmp_path):
    one = _client(tmp_path, "one", ["cpu"])
    _fill(one, "IVF_FLAT")
    one.load_collection("c")
    c = _client(tmp_path, "d", ["cpu", "cpu", "cpu"])
    _fill(c, "IVF_FLAT")
    with pytest.raises(MilvusException, match="replica_number=4 needs that many workers"):
        c.load_collection("c", replica_number=4)
    c.load_collection("c", replica_number=2)
    res = c._db.residency.get("c")
    for seg_id in res.segments:
        holders = {c._db.workers.holding(rs.allocator).name for rs in res.copies(seg_id)}
        assert len(holders) == 2                        # two copies, two workers
    assert c.memory_info("c")["bytes"] > 1.9 * one.memory_info("c")["bytes"] - 2000
    with pytest.raises(MilvusException, match="can't change the replica number"):
        c.load_collection("c", replica_number=3)
    # deletes and rows sealed after the load reach every copy; searches alternate copies
    for cl in (one, c):
        cl.delete("c", filter="id in [7, 8, 9]")
        cl.insert("c", basic_rows(150, dim=16, start=7000, seed=3))
        cl.flush("c")
    assert all(len(res.copies(s)) == 2 for s in res.segments)
    first, second = _searches(c), _searches(c)
    assert first == second == _searches(one)
    seen = [{id(s) for s in res.all_segments(growing=False)} for _ in range(2)]
    assert not seen[0] & seen[1]                        # the next search takes the other copy
    c.release_collection("c")
    assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
    one.close()
    c.close()


def test_replicas_come_back_after_a_reopen(tmp_path):
    c = _client(tmp_path, "d", ["cpu", "cpu"])
    _fill(c, "FLAT")
    c.load_collection("c", replica_number=2)
    want = _searches(c)
    c.close()
    c = _client(tmp_path, "d", ["cpu", "cpu"])
    c._db.residency.finish(c._db.residency.get("c"))
    res = c._db.residency.get("c")
    assert res.replica_number == 2 and all(len(res.copies(s)) == 2 for s in res.segments)
    assert _searches(c) == want
    c.close()
    c = _client(tmp_path, "d", ["cpu"])   # fewer workers than replicas: NotLoad, told why
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    c.close()

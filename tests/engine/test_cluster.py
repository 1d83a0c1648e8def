"""engine/cluster.py: Ray actors as workers, on a local Ray cluster this module starts
(loopback only, bounded: 3 CPUs, a small object store). Sealed segments are read by the
actors from the data directory and searched there; results equal one device's (filters,
deletes and inserts after load, partial loads, FLAT and IVF_FLAT); a load that fits
nowhere is refused whole; release frees every worker; a killed actor is a clear error,
never a partial result."""
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the cluster extra is not installed")

from engine import LoadState, MilvusClient  # noqa: E402
from engine.cluster import start_local_cluster  # noqa: E402
from engine.errors import MilvusException  # noqa: E402

from ..conftest import basic_rows  # noqa: E402
from .test_workers import _fill, _searches  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    start_local_cluster(3, 80 << 20)
    yield
    ray.shutdown()


def _client(tmp_path, name, **kw):
    return MilvusClient(str(tmp_path / name), device="cpu", **kw)


def _holders(c):
    res = c._db.residency.get("c")
    return [rs.worker.name for rs in res.every_copy()]


@pytest.mark.parametrize("index", ["FLAT", "IVF_FLAT"])
def test_ray_workers_answer_as_one_device(tmp_path, index):
    got = {}
    for name, kw in (("one", {}), ("ray", {"ray_workers": 2})):
        c = _client(tmp_path, name, **kw)
        _fill(c, index)
        c.load_collection("c")
        c.insert("c", basic_rows(20, dim=16, start=10_000, seed=7))  # growing, after load
        c.delete("c", filter="id in [10001, 5, 300]")                # sealed and growing
        got[name] = _searches(c)
        if name == "ray":
            assert sorted(_holders(c)) == ["ray/0", "ray/0", "ray/1", "ray/1"]
            workers = {w["name"]: w for w in c.memory_info()["workers"]}
            assert workers["ray/0"]["collections"]["c"]["bytes"] > 0
            # the coordinator holds the growing rows (and, for IVF, the centroids) only
            res = c._db.residency.get("c")
            assert c._db.workers.coordinator.allocator.collection_info("c")["bytes"] == \
                sum(c._db.workers.coordinator.allocator.held(o) for o in
                    c._db.workers.coordinator.allocator._bytes
                    if o.collection == "c" and o.segment in ("growing", "index"))
            assert res.growing
            c.release_collection("c")
            assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
        c.close()
    assert got["one"] == got["ray"]


def test_seals_indexes_and_partial_loads_reach_the_workers(tmp_path):
    c = _client(tmp_path, "d", ray_workers=2, memory_limit=10**9)  # equal budgets
    _fill(c, "FLAT", segments=2)
    c.load_collection("c", load_fields=["id", "vec", "age", "title"])
    c.insert("c", basic_rows(150, dim=16, start=5000, seed=30))
    c.flush("c")                                          # sealed after the load
    assert sorted(_holders(c)) == ["ray/0", "ray/0", "ray/1"]
    p = MilvusClient.prepare_index_params()
    p.add_index("age", "STL_SORT")
    c.create_index("c", p)                                # built by the workers too
    hits = c.query("c", filter="age >= 40 and id >= 5000", output_fields=["age", "title"])
    want = [r for r in basic_rows(150, dim=16, start=5000, seed=30) if r["age"] >= 40]
    assert sorted(h["id"] for h in hits) == [r["id"] for r in want]
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 448
    for w in c.memory_info()["workers"][1:]:             # each worker holds the new index
        assert any(p.startswith("index/") for p in w["collections"]["c"]["parts"]), w
    with pytest.raises(MilvusException, match="score"):
        c.query("c", filter="score > 1")                  # not loaded: refused
    c.close()


def test_a_load_that_fits_no_worker_is_refused_whole(tmp_path):
    c = _client(tmp_path, "d", ray_workers=2, memory_limit=30_000)
    _fill(c, "FLAT", segments=5)
    with pytest.raises(MilvusException) as e:
        c.load_collection("c")
    assert e.value.code == 1400 and "ray/0 " in e.value.message and "ray/1 " in e.value.message
    assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    c.close()


def test_replicas_on_ray_workers(tmp_path):
    c = _client(tmp_path, "d", ray_workers=2)
    _fill(c, "IVF_FLAT", segments=2)
    c.load_collection("c", replica_number=2)
    assert sorted(_holders(c)) == ["ray/0", "ray/0", "ray/1", "ray/1"]
    first, second = _searches(c), _searches(c)          # one copy, then the other
    assert first == second
    c.close()


def test_workers_read_their_segments_at_the_same_time(tmp_path, monkeypatch):
    """A load starts every Ray worker's segments before it waits for any: at some moment
    loads are outstanding on both workers (one at a time would never be)."""
    from engine.cluster import RemoteLoads

    most = []
    real = RemoteLoads.finished

    def finished(self, wait):
        most.append({w.name for _, w, _, _ in self.pending.values()})
        return real(self, wait)

    monkeypatch.setattr(RemoteLoads, "finished", finished)
    c = _client(tmp_path, "d", ray_workers=2)
    _fill(c, "FLAT", segments=8)
    c.load_collection("c")
    assert {"ray/0", "ray/1"} in most
    assert c.get_load_state("c") == {"state": LoadState.Loaded}
    assert sorted(_holders(c)) == ["ray/0"] * 4 + ["ray/1"] * 4
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1197
    c.close()


def test_a_damaged_segment_rolls_back_every_worker(tmp_path):
    """One worker's segment fails its checksum while the other worker's loads go on: the
    load is refused with the file named and nothing of it stays on any worker."""
    from engine.errors import StorageError
    from engine.storage.segments import shard_header

    from ..conftest import column_file
    from .storage.test_corruption import _flip

    c = _client(tmp_path, "d", ray_workers=2)
    _fill(c, "FLAT", segments=6)
    coll = c._db.collections["c"]
    path = coll.segment_dir(coll.sealed[3].id) / column_file(c, "c", "vec")
    good = _flip(path, shard_header(path)[0] + 100)
    with pytest.raises(StorageError) as e:
        c.load_collection("c")
    assert str(path) in e.value.message
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
    path.write_bytes(good)
    c.load_collection("c")
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 897
    c.close()


def test_a_worker_failure_that_is_no_milvus_error_shows_no_python_text(monkeypatch):
    """Only the worker and the exception's class reach the caller; the traceback goes to
    the log."""
    from engine.cluster import _got

    def failed(ref):
        raise ray.exceptions.RayTaskError(
            "RayWorker.load", "Traceback (most recent call last):\n  File x", KeyError("k"),
            pid=1, ip="127.0.0.1")

    monkeypatch.setattr(ray, "get", failed)
    with pytest.raises(MilvusException) as e:
        _got(None, "ray/0")
    assert e.value.code == 65535 and "worker ray/0 failed with KeyError" in e.value.message
    assert "Traceback" not in e.value.message and "'k'" not in e.value.message


@pytest.mark.parametrize("with_scan", [True, False])
def test_output_fields_come_with_the_scan_for_small_batches(tmp_path, monkeypatch, with_scan):
    """Up to FETCH_WITH_SCAN queries x limit, a Ray worker sends its top-k's output with
    the scan (one round trip: no fetch after); above it, the winners' fields are fetched
    after the merge. The hits are the same either way, and the same as one device's."""
    import engine.search
    from engine.cluster import RemoteSegment

    if not with_scan:
        monkeypatch.setattr(engine.search, "FETCH_WITH_SCAN", 0)
    fetches = []
    real = RemoteSegment.fetch_many
    monkeypatch.setattr(RemoteSegment, "fetch_many",
                        staticmethod(lambda *a: fetches.append(1) or real(*a)))
    q = np.random.default_rng(4).standard_normal((3, 16)).astype(np.float32).tolist()
    got = {}
    for name, kw in (("one", {}), ("ray", {"ray_workers": 2})):
        c = _client(tmp_path, name, **kw)
        _fill(c, "FLAT")
        c.load_collection("c")
        got[name] = [c.search("c", data=q, limit=6, filter="age > 3", output_fields=out)
                     for out in (["*"], ["title", "vec"], ["id"], [])]
        c.close()
    assert got["one"] == got["ray"]
    assert len(fetches) == (0 if with_scan else 3)  # every search but the keys-only one


def _wait_loaded(c, name="c", timeout=60):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        state = c.get_load_state(name)
        if state["state"] == LoadState.Loaded:
            return
        time.sleep(0.1)
    raise AssertionError(f"still {state}")


def test_a_killed_worker_is_re_placed_with_no_lost_rows(tmp_path):
    one = _client(tmp_path, "one")
    c = _client(tmp_path, "d", ray_workers=2)
    for cl in (one, c):
        _fill(cl, "IVF_FLAT")
        cl.load_collection("c")
    want_before = _searches(one)
    assert _searches(c) == want_before
    ray.kill(c._db.workers.by_name("ray/0").allocator.actor)
    for cl in (one, c):  # an acknowledged delete while the worker is gone
        cl.delete("c", filter="id in [11, 170, 320, 480]")
    q = np.zeros((1, 16), dtype=np.float32).tolist()
    try:  # found gone: re-placed in the background; meanwhile 101, never a partial answer
        c.search("c", data=q, limit=3)
    except MilvusException as e:
        assert e.code == 101 and "loading" in e.message
    _wait_loaded(c)
    assert sorted(_holders(c)) == ["ray/1"] * 4
    assert _searches(c) == _searches(one)
    assert [w["name"] for w in c.memory_info()["workers"] if w["used_bytes"]] == ["cpu", "ray/1"]
    c.release_collection("c")                            # and loads again without it
    c.load_collection("c")
    assert _searches(c) == _searches(one)
    one.close()
    c.close()


def test_a_lost_workers_segments_are_read_by_the_others_at_the_same_time(tmp_path,
                                                                        monkeypatch):
    """Re-placement reserves each lost segment on the roomiest survivor, then starts
    them all: both survivors read at once, and the rows come back whole."""
    from engine.cluster import RemoteLoads

    most = []
    real = RemoteLoads.finished

    def finished(self, wait):
        most.append({w.name for _, w, _, _ in self.pending.values()})
        return real(self, wait)

    c = _client(tmp_path, "d", ray_workers=3, memory_limit=10**9)  # equal budgets
    _fill(c, "FLAT", segments=6)
    c.load_collection("c")
    want = _searches(c)
    assert sorted(_holders(c)) == ["ray/0"] * 2 + ["ray/1"] * 2 + ["ray/2"] * 2
    monkeypatch.setattr(RemoteLoads, "finished", finished)
    ray.kill(c._db.workers.by_name("ray/0").allocator.actor)
    c.get_load_state("c")                                # finds it gone, re-places
    _wait_loaded(c)
    assert {"ray/1", "ray/2"} in most
    assert sorted(_holders(c)) == ["ray/1"] * 3 + ["ray/2"] * 3
    assert _searches(c) == want
    c.close()


def test_a_re_placement_that_fails_keeps_nothing_on_any_worker(tmp_path):
    """One of the lost worker's segments fails its checksum while the survivors read the
    others: the collection is released whole, on every worker, with the file named."""
    import time

    from engine.storage.segments import shard_header

    from ..conftest import column_file
    from .storage.test_corruption import _flip

    c = _client(tmp_path, "d", ray_workers=3, memory_limit=10**9)
    _fill(c, "FLAT", segments=6)
    c.load_collection("c")
    res, coll = c._db.residency.get("c"), c._db.collections["c"]
    lost = sorted(s for s in res.segments if res.segments[s].worker.name == "ray/0")
    path = coll.segment_dir(lost[-1]) / column_file(c, "c", "vec")
    _flip(path, shard_header(path)[0] + 100)
    ray.kill(c._db.workers.by_name("ray/0").allocator.actor)
    c.get_load_state("c")                                # finds it gone, re-places
    deadline = time.time() + 60
    while (err := c.take_load_error("c")) is None and time.time() < deadline:
        time.sleep(0.1)
    assert err is not None and "could not be placed" in err.message
    assert str(path) in err.message
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    assert all(w["used_bytes"] == 0 for w in c.memory_info()["workers"])
    c.close()


def test_a_killed_worker_shows_in_the_load_state(tmp_path):
    c = _client(tmp_path, "d", ray_workers=2)
    _fill(c, "FLAT", segments=2, per=3000)
    c.load_collection("c")
    ray.kill(c._db.workers.by_name("ray/1").allocator.actor)
    state = c.get_load_state("c")                   # no read needed to find it gone
    assert state["state"] in (LoadState.Loading, LoadState.Loaded)
    _wait_loaded(c)
    assert sorted(_holders(c)) == ["ray/0"] * 2
    c.close()


def test_a_killed_worker_with_replicas_is_served_from_them(tmp_path):
    c = _client(tmp_path, "d", ray_workers=2)
    _fill(c, "FLAT")
    c.load_collection("c", replica_number=2)
    want = _searches(c)
    ray.kill(c._db.workers.by_name("ray/1").allocator.actor)
    assert _searches(c) == want                          # the other copies answer at once
    assert c.get_load_state("c") == {"state": LoadState.Loaded}
    assert sorted(_holders(c)) == ["ray/0"] * 4
    c.close()


def test_the_heartbeat_finds_a_killed_worker_for_every_database(tmp_path):
    """Nothing reads and nothing polls: the heartbeat finds the dead actor and both
    databases, which share the workers, re-place the segments they had on it."""
    import time

    c = _client(tmp_path, "d", ray_workers=2, heartbeat_s=0.2)
    c.create_database("other")
    other = c.in_database("other")
    for cl in (c, other):
        _fill(cl, "FLAT", segments=2)
        cl.load_collection("c")
    want = _searches(c)
    ray.kill(c._db.workers.by_name("ray/1").allocator.actor)
    deadline = time.time() + 60
    while time.time() < deadline:
        residents = [cl._db.residency.get("c") for cl in (c, other)]
        if all(not r.replacing and sorted(_holders(cl)) == ["ray/0", "ray/0"]
               for cl, r in zip((c, other), residents)):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"not re-placed: {_holders(c)} {_holders(other)}")
    assert _searches(c) == want == _searches(other)
    beat = c._dbs._heartbeat
    c.close()
    assert not beat._thread.is_alive()


def test_a_heartbeat_must_be_a_positive_number(tmp_path):
    for bad in (0, -1, "5", True, float("nan")):
        with pytest.raises(MilvusException, match="heartbeat_s"):
            _client(tmp_path, "d", ray_workers=1, heartbeat_s=bad)


class _FlakyRay:
    """Stands in for the ray module: ``init`` times out as Ray does ``failures`` times."""

    def __init__(self, failures, message="The current node timed out during startup."):
        self.failures, self.message, self.calls = failures, message, []

    def init(self, **kw):
        self.calls.append("init")
        if len(self.calls) // 2 < self.failures:
            raise Exception(self.message)

    def shutdown(self):
        self.calls.append("shutdown")


@pytest.mark.parametrize("failures, message, calls", [
    (0, "timed out during startup", ["init"]),
    (1, "timed out during startup", ["init", "shutdown", "init"]),
    (2, "timed out during startup", ["init", "shutdown", "init", "shutdown"]),
    (1, "some other failure", ["init", "shutdown"]),
])
def test_a_local_start_that_times_out_is_tried_once_more(monkeypatch, failures, message, calls):
    fake = _FlakyRay(failures, message)
    monkeypatch.setattr("engine.cluster._ray", lambda: fake)
    if calls[-1] == "shutdown":  # failed for good: said plainly, with Ray's logs
        with pytest.raises(RuntimeError, match="did not start") as e:
            start_local_cluster(2, 80 << 20)
        assert "raylet.err" in str(e.value) and message in str(e.value)
    else:
        start_local_cluster(2, 80 << 20)
    assert fake.calls == calls

"""Load and release rules of API.md, and memory_info properties. CPU and (gpu) CUDA."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine import LoadState, MilvusClient
from engine.errors import MilvusException, StorageError
from engine.transfer import HostToDevice

from ..conftest import basic_rows, basic_schema, column_file, index_params, make_loaded


def _resident_nbytes(client, name):
    """Independent sum of what the collection holds resident, split as memory_info splits
    it: (device bytes, host bytes). On the CPU device everything is device memory."""
    res = client._db.residency.get(name)
    dev = host = 0
    for seg in [*res.segments.values(), *res.growing.values()]:
        objs = [seg.deleted] if not hasattr(seg, "_deleted_buf") else [seg._deleted_buf]
        if hasattr(seg, "_bufs"):
            objs += list(seg._bufs.values()) + list(seg._valid_bufs.values())
            objs += [c for chunks in seg._chunks.values() for c in chunks]
        else:
            objs += list(seg.cols.values()) + list(seg.valid.values())
        objs += list(seg._norms.values())
        objs += [t for layout in seg.layouts.values() for t in layout.values()]
        objs += [o for _, v in seg._json_cache.values() for o in v.objects()]
        for o in objs:
            if isinstance(o, torch.Tensor):
                dev += o.numel() * o.element_size()
            elif client.device.type == "cpu":
                dev += o.nbytes
            else:
                host += o.nbytes
    dev += sum(t.numel() * t.element_size() for parts in res.index_parts.values()
               for t in parts.values())
    return dev, host


def _part_names(client, name):
    """Every resident part, on the device or (Arrow columns on CUDA) in host memory."""
    entry = client.memory_info(name)
    return set(entry["parts"]) | set(entry.get("host_parts", {}))


def _info_bytes(client, name):
    entry = client.memory_info(name)
    return entry["bytes"], entry.get("host_bytes", 0)


def test_rule1_not_loaded_is_101_but_writes_work(client):
    client.create_collection("c", schema=basic_schema(), index_params=index_params())
    client.release_collection("c")
    for call in (lambda: client.search("c", [[0.0] * 8]), lambda: client.query("c", "id > 0"),
                 lambda: client.get("c", [1])):
        with pytest.raises(MilvusException) as e:
            call()
        assert e.value.code == 101 and e.value.message.startswith(
            "collection not loaded[collection=c]")
    assert client.insert("c", basic_rows(2))["insert_count"] == 2
    assert client.upsert("c", basic_rows(1))["upsert_count"] == 1
    assert client.delete("c", ids=[1]) == {"delete_count": 1}


def test_rule2_load_needs_an_index_on_every_loaded_vector(client):
    client.create_collection("c", schema=basic_schema())
    with pytest.raises(MilvusException) as e:
        client.load_collection("c")
    assert e.value.code == 700 and e.value.message.startswith("index not found[collection=c]")
    assert client.get_load_state("c") == {"state": LoadState.NotLoad}


def test_rule3_load_fields_validation(client):
    client.create_collection("c", schema=basic_schema(), index_params=index_params())
    client.release_collection("c")
    with pytest.raises(MilvusException) as e:
        client.load_collection("c", load_fields=["vec", "title"])
    assert e.value.code == 1100 and e.value.message.startswith(
        "load field list ['vec', 'title'] does not contain primary key field id")
    with pytest.raises(MilvusException) as e:
        client.load_collection("c", load_fields=["id", "title"])
    assert e.value.code == 1100 and "does not contain vector field" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.load_collection("c", load_fields=["id", "vec", "nope"])
    assert e.value.code == 1700 and "field not found[field=nope]" in e.value.message
    assert client.get_load_state("c") == {"state": LoadState.NotLoad}
    client.insert("c", basic_rows(3))
    client.load_collection("c", load_fields=[])  # empty list: all fields
    assert _part_names(client, "c") == {"id", "vec", "title", "score", "age",
                                                       "$meta", "$deleted"}


def test_rule4_partial_load_limits_filters_and_outputs(client):
    rows = make_loaded(client, n=50, flush=True)
    client.release_collection("c")
    client.load_collection("c", load_fields=["id", "vec", "age"], skip_load_dynamic_field=True)
    # title, score and $meta are not resident
    assert _part_names(client, "c") == {"id", "vec", "age", "$deleted"}
    with pytest.raises(MilvusException) as e:
        client.query("c", "title == 't1'")
    assert e.value.code == 1100 and "field title is not loaded" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.search("c", [rows[0]["vec"]], limit=1, output_fields=["score"])
    assert e.value.code == 1100 and "field score is not loaded" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.query("c", "color == 'red'")
    assert "cannot be used since the dynamic field is not loaded" in e.value.message
    with pytest.raises(MilvusException) as e:
        client.query("c", "age > 1", output_fields=["color"])
    assert "cannot be used since the dynamic field is not loaded" in e.value.message
    got = client.query("c", "age == 3", output_fields=["*"])
    assert got == [{"id": 3, "vec": pytest.approx(rows[3]["vec"]), "age": 3}]
    # nothing was read from disk behind the user's back
    assert set(client._db.residency.get("c").fields) == {"id", "vec", "age"}


def test_partial_load_saves_real_memory(client):
    make_loaded(client, n=200, flush=True)
    client.release_collection("c")
    client.load_collection("c")
    full = sum(_info_bytes(client, "c"))
    client.release_collection("c")
    client.load_collection("c", load_fields=["vec", "id"], skip_load_dynamic_field=True)
    part = sum(_info_bytes(client, "c"))
    assert part < full and full - part == sum(
        b for p, b in client._db.collections["c"].manifest.segments[0]["bytes"].items()
        if p in ("title", "score", "age", "$meta"))


def test_rule5_same_config_noop_and_change_rejected(client):
    make_loaded(client, n=10)
    client.release_collection("c")
    client.load_collection("c", load_fields=["id", "vec", "age"])
    before = client.memory_info()
    client.load_collection("c", load_fields=["age", "vec", "id"])  # same set, other order
    assert client.memory_info() == before
    with pytest.raises(MilvusException) as e:
        client.load_collection("c", load_fields=["id", "vec"])
    assert e.value.code == 1100 and e.value.message == (
        "can't change the load field list for loaded collection: release the collection "
        "first, then load with the new field list: invalid parameter")
    with pytest.raises(MilvusException) as e:
        client.load_collection("c")
    assert e.value.code == 1100
    with pytest.raises(MilvusException, match="replica"):
        client.load_collection("c", load_fields=["id", "vec", "age"], replica_number=2)


def test_rule6_release_idempotent_and_drop_releases(client):
    make_loaded(client, n=10)
    client.release_collection("c")
    client.release_collection("c")
    assert client.get_load_state("c") == {"state": LoadState.NotLoad}
    client.load_collection("c")
    client.drop_collection("c")
    assert client.memory_info()["used_bytes"] == 0


def test_rule7_too_big_fails_1400_and_leaves_nothing(tmp_path, device):
    c = MilvusClient(str(tmp_path / "d"), device=device, memory_limit=20_000)
    c.create_collection("c", schema=basic_schema(dim=64))
    c.create_index("c", index_params())
    c.insert("c", basic_rows(200, dim=64))
    c.flush("c")
    used = c.memory_info()["used_bytes"]
    with pytest.raises(MilvusException) as e:
        c.load_collection("c")
    assert e.value.code == 1400 and "needs" in e.value.message and "free" in e.value.message
    assert e.value.needed > e.value.free
    assert c.memory_info()["used_bytes"] == used
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    assert c.memory_info("c") == {"bytes": 0, "parts": {}}
    assert c._db.collections["c"].manifest.load.loaded is False
    c.close()


@pytest.mark.parametrize("broken", ["vec", "title"])
def test_a_file_that_cannot_be_read_rolls_the_load_back(tmp_path, device, broken):
    """A segment file truncated on disk (the second of two segments, so the first was
    already resident): the load fails naming the file, nothing stays resident (on CUDA,
    memory_allocated is back), the file is untouched; once it is restored the same load
    works. A background load reports the same error through take_load_error."""
    c = MilvusClient(str(tmp_path / "d"), device=device)
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    for i in range(2):
        c.insert("c", basic_rows(50, start=i * 50, seed=i))
        c.flush("c")
    c.release_collection("c")
    seg_dirs = sorted((c._db.collections["c"].path / "segments").iterdir())
    path = seg_dirs[-1] / column_file(c, "c", broken)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) - 40])
    used = c.memory_info()["used_bytes"]
    cuda_before = torch.cuda.memory_allocated() if device == "cuda" else 0
    for background in (False, True):
        if background:
            c.load_collection("c", _async=True)
            deadline = time.time() + 30
            while c.get_load_state("c")["state"] == LoadState.Loading and time.time() < deadline:
                time.sleep(0.01)
            err = c.take_load_error("c")
        else:
            with pytest.raises(StorageError) as e:
                c.load_collection("c")
            err = e.value
        assert isinstance(err, StorageError) and str(path) in err.message
        assert "restore" in err.message
        assert c.get_load_state("c") == {"state": LoadState.NotLoad}
        assert c.memory_info("c") == {"bytes": 0, "parts": {}}
        assert c.memory_info()["used_bytes"] == used
        if device == "cuda":
            torch.cuda.synchronize()
            assert torch.cuda.memory_allocated() == cuda_before
        assert path.read_bytes() == good[: len(good) - 40]  # nothing on disk changed
    path.write_bytes(good)
    c.load_collection("c")
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 100}]
    assert c.query("c", "id == 77", output_fields=["title"])[0]["title"] == "t0"
    c.close()


def test_rule8_inserts_after_load_are_visible_and_seal_without_reload(client):
    rows = make_loaded(client, n=20, flush=True)
    new = basic_rows(5, start=1000, seed=9)
    client.insert("c", new)
    assert client.search("c", [new[2]["vec"]], limit=1)[0][0]["id"] == 1002
    assert "growing" in {s for s in _owner_segments(client)}
    loaded_before = set(client._db.residency.get("c").segments)
    client.flush("c")
    res = client._db.residency.get("c")
    assert set(res.segments) - loaded_before  # a new resident sealed segment
    assert not res.growing
    assert client.search("c", [new[2]["vec"]], limit=1)[0][0]["id"] == 1002
    assert _info_bytes(client, "c") == _resident_nbytes(client, "c")
    assert client.get("c", [rows[3]["id"]]) == [{"id": 3}]


def _owner_segments(client):
    return {o.segment for o in client.allocator._bytes}


def _loaded_with_growing(client):
    make_loaded(client, n=300, flush=True)
    client.insert("c", basic_rows(7, start=500))


def test_memory_info_shape_and_empty_entry(client):
    info = client.memory_info()
    assert set(info) == {"device", "capacity_bytes", "used_bytes", "reserved_bytes", "free_bytes",
                         "collections"}
    assert info["device"] == str(client.device) and info["collections"] == {}
    assert info["used_bytes"] == 0 and info["free_bytes"] == info["capacity_bytes"]
    assert client.memory_info("nothing") == {"bytes": 0, "parts": {}}


def test_memory_info_entry_matches_table_and_parts_add_up(client):
    _loaded_with_growing(client)
    entry = client.memory_info("c")
    assert entry == client.memory_info()["collections"]["c"]
    assert entry["bytes"] == sum(entry["parts"].values())
    assert entry.get("host_bytes", 0) == sum(entry.get("host_parts", {}).values())


def test_memory_info_is_exact(client):
    _loaded_with_growing(client)
    assert _info_bytes(client, "c") == _resident_nbytes(client, "c")
    # growing buffers count at their allocated capacity, sealed rows at their size
    assert client.memory_info("c")["parts"]["vec"] == (1024 + 300) * 8 * 4


def test_memory_info_used_and_free(client):
    _loaded_with_growing(client)
    info = client.memory_info()
    assert info["used_bytes"] == sum(e["bytes"] for e in info["collections"].values())
    assert info["free_bytes"] == info["capacity_bytes"] - info["used_bytes"]


def test_memory_info_after_release_is_zero(client):
    cuda_before = torch.cuda.memory_allocated() if client.device.type == "cuda" else 0
    _loaded_with_growing(client)
    client.release_collection("c")
    assert client.memory_info("c") == {"bytes": 0, "parts": {}}
    assert client.memory_info()["used_bytes"] == 0
    if client.device.type == "cuda":
        assert torch.cuda.memory_allocated() == cuda_before


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux /proc")
def test_release_gives_host_memory_back_to_the_os(tmp_path):
    """On the CPU device the bytes memory_info counts are real: the process's resident
    memory grows by them on load and shrinks back on release (not just an accounting)."""
    import gc

    import numpy as np

    from engine import DataType

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=128)
    c.create_collection("c", schema=s)
    rng = np.random.default_rng(0)
    c.insert("c", {"id": np.arange(200_000), "v": rng.random((200_000, 128), dtype=np.float32)})
    c.flush("c")
    c.create_index("c", index_params("v"))
    gc.collect()
    base = _rss_mb()
    c.load_collection("c")
    resident = c.memory_info("c")["bytes"] / 2**20
    grown = _rss_mb() - base
    assert resident > 90 and grown > 0.8 * resident
    c.release_collection("c")
    gc.collect()
    assert _rss_mb() - base < 0.1 * resident
    c.close()


def test_rule9_load_intent_persists(tmp_path, device):
    path = str(tmp_path / "d")
    c = MilvusClient(path, device=device)
    make_loaded(c, n=30, flush=True)
    c.release_collection("c")
    c.load_collection("c", load_fields=["id", "vec", "title"], skip_load_dynamic_field=True)
    c.create_collection("other", schema=basic_schema(), index_params=index_params())
    c.release_collection("other")
    c.close()
    c = MilvusClient(path, device=device)
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    assert c.get_load_state("c") == {"state": LoadState.Loaded}
    assert c.get_load_state("other") == {"state": LoadState.NotLoad}
    assert _part_names(c, "c") == {"id", "vec", "title", "$deleted"}
    assert c.query("c", "id == 4", output_fields=["title"]) == [{"id": 4, "title": "t4"}]
    c.close()


_EXIT_WHILE_LOADING = """
import atexit, sys, threading, time
atexit.register(lambda: print("alive at exit:", sorted(
    t.name for t in threading.enumerate() if t.name.startswith("hotset-load"))))
from engine import MilvusClient
from engine.transfer import HostToDevice
real = HostToDevice.load
def slow(self, *a, **k):
    time.sleep(0.2)
    return real(self, *a, **k)
HostToDevice.load = slow
c = MilvusClient(sys.argv[1], device="cpu")
print("state:", c.get_load_state("c")["state"])
"""


def test_exit_during_a_restored_load_stops_it_and_keeps_the_intent(tmp_path):
    """A script that opens a data directory and exits while the persisted load is still
    being restored in the background: the load is cancelled and waited for at exit (a
    daemon thread inside torch at interpreter teardown aborted the process), and the
    intent survives for the next open."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    for i in range(4):
        c.insert("c", basic_rows(20, start=i * 20))
        c.flush("c")
    c.release_collection("c")
    c.load_collection("c", load_fields=["id", "vec"])
    c.close()
    run = subprocess.run([sys.executable, "-c", _EXIT_WHILE_LOADING, path], text=True,
                         capture_output=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
    assert "state: Loading" in run.stdout and "alive at exit: []" in run.stdout
    c = MilvusClient(path, device="cpu")
    assert c.get_load_state("c")["state"] in (LoadState.Loading, LoadState.Loaded)
    c.close()
    c = MilvusClient(path, device="cpu")
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    assert _part_names(c, "c") == {"id", "vec", "$meta", "$deleted"}
    c.close()


def test_async_load_reports_progress_and_release_cancels(tmp_path, monkeypatch, device):
    c = MilvusClient(str(tmp_path / "d"), device=device)
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    for i in range(6):
        c.insert("c", basic_rows(50, start=i * 50))
        c.flush("c")  # six sealed segments
    c.release_collection("c")
    real = HostToDevice.load

    def slow(self, *a, **k):
        time.sleep(0.05)
        return real(self, *a, **k)

    monkeypatch.setattr(HostToDevice, "load", slow)
    c.load_collection("c", _async=True)
    seen = []
    while True:
        st = c.get_load_state("c")
        seen.append(st)
        if st["state"] == LoadState.Loaded:
            break
        assert st["state"] == LoadState.Loading and 0 <= st["progress"] <= 99
        time.sleep(0.01)
    progress = [s["progress"] for s in seen if "progress" in s]
    assert progress == sorted(progress) and len(set(progress)) >= 3  # moves smoothly
    c.release_collection("c")
    c.load_collection("c", _async=True)
    time.sleep(0.1)
    assert c.get_load_state("c")["state"] == LoadState.Loading
    c.release_collection("c")  # cancels
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    assert c.memory_info()["used_bytes"] == 0
    time.sleep(0.5)  # the cancelled thread never re-registers anything
    assert c.memory_info()["used_bytes"] == 0
    c.close()


def test_rule10_partitions(client):
    client.create_collection("c", schema=basic_schema(), index_params=index_params())
    client.create_partition("c", "p1")
    client.create_partition("c", "p2")
    assert client.list_partitions("c") == ["_default", "p1", "p2"]
    assert client.has_partition("c", "p1") and not client.has_partition("c", "zz")
    client.insert("c", basic_rows(5, start=0), partition_name="p1")
    client.insert("c", basic_rows(5, start=100, seed=3), partition_name="p2")
    with pytest.raises(MilvusException) as e:
        client.insert("c", basic_rows(1), partition_name="zz")
    assert e.value.code == 200
    client.flush("c")
    client.release_collection("c")
    client.load_partitions("c", ["p1"])
    assert client.get_load_state("c", partition_name="p1") == {"state": LoadState.Loaded}
    assert client.get_load_state("c", partition_name="p2") == {"state": LoadState.NotLoad}
    ids = {h["id"] for h in client.search("c", [[0.0] * 8], limit=20)[0]}
    assert ids == {0, 1, 2, 3, 4}
    with pytest.raises(MilvusException) as e:
        client.search("c", [[0.0] * 8], limit=5, partition_names=["p2"])
    assert e.value.code == 201 and "partition not loaded[partition=p2]" in e.value.message
    client.load_partitions("c", ["p2"])
    assert len(client.search("c", [[0.0] * 8], limit=20, partition_names=["p2"])[0]) == 5
    assert len(client.search("c", [[0.0] * 8], limit=20)[0]) == 10
    with pytest.raises(MilvusException) as e:
        client.drop_partition("c", "p2")
    assert "release it first" in e.value.message
    client.release_partitions("c", ["p2"])
    assert len(client.search("c", [[0.0] * 8], limit=20)[0]) == 5
    assert all(o.partition != "p2" for o in client.allocator._bytes)
    client.drop_partition("c", "p2")
    assert client.list_partitions("c") == ["_default", "p1"]


def test_refresh_load_picks_up_new_segments_on_disk(client):
    from engine.collection import Collection, read_manifest
    from engine.storage.wal import Kind

    rows = make_loaded(client, n=10, flush=True)
    path = client._db.collections["c"].path
    # a bulk-import tool writes one more sealed segment straight into the directory
    tool = Collection(path, read_manifest(path), 1 << 30)
    tool.wal = type(tool.wal)(path / "tool-wal.log")
    from engine.columns import to_batch
    tool.write(Kind.INSERT, "_default", to_batch(tool.schema, basic_rows(4, start=50, seed=2)))
    tool.manifest.next_segment_id = 100  # a tool's own numbering, not the client's
    tool.flush()
    tool.close()
    assert client.get("c", [51]) == []  # not resident yet
    client.refresh_load("c")
    assert client.get("c", [51], output_fields=["title"]) == [{"id": 51, "title": "t2"}]
    assert _info_bytes(client, "c") == _resident_nbytes(client, "c")
    assert client.get("c", [rows[0]["id"]]) == [{"id": 0}]


def test_insert_into_loaded_collection_that_cannot_grow_writes_nothing(tmp_path, device):
    c = MilvusClient(str(tmp_path / "d"), device=device, memory_limit=60_000)
    c.create_collection("c", schema=basic_schema(dim=8), index_params=index_params())
    c.insert("c", basic_rows(10))  # the first growing buffer (1024 rows) fits
    wal = (c._db.collections["c"].path / "wal.log").stat().st_size
    with pytest.raises(MilvusException) as e:
        c.insert("c", basic_rows(3000, start=100))  # would need a 4096-row buffer
    assert e.value.code == 1400 and "new rows" in e.value.message
    assert (c._db.collections["c"].path / "wal.log").stat().st_size == wal
    assert c.get_collection_stats("c") == {"row_count": 10}
    c.release_collection("c")
    assert c.insert("c", basic_rows(3000, start=100))["insert_count"] == 3000  # unloaded: fine
    c.close()


def test_rule1_delete_by_filter_works_in_any_state(client):
    """Delete by filter on a released collection, and on partitions that are not loaded:
    the filter's fields are read from disk for the call (Milvus answers 101 instead), the
    matching rows go in sealed and growing segments alike, and nothing becomes resident."""
    client.create_collection("c", schema=basic_schema(), index_params=index_params())
    client.create_partition("c", "p1")
    client.insert("c", basic_rows(20))                               # ids 0-19, _default
    client.flush("c")
    client.insert("c", basic_rows(10, start=20, seed=1))            # growing, _default
    client.insert("c", basic_rows(10, start=100, seed=2), partition_name="p1")
    live = {*range(30), *range(100, 110)}
    client.release_collection("c")
    # age = id % 50, title = f"t{id % 7}", color (a dynamic key) blue when id % 3 == 2
    gone = {i for i in live if i % 50 < 3 or i % 7 == 6 or i % 3 == 2}
    n = client.delete("c", filter="age < 3 or title == 't6' or color == 'blue'")
    assert n == {"delete_count": len(gone)} and len(gone) > 10
    live -= gone
    assert client.memory_info("c") == {"bytes": 0, "parts": {}}
    gone = {i for i in live if i >= 105}
    assert client.delete("c", filter="id >= 105", partition_name="p1") == {
        "delete_count": len(gone)}
    live -= gone
    client.load_partitions("c", ["_default"])  # p1 stays on disk only
    before = client.memory_info("c")
    gone = live & {4, 22, 103}
    assert len(gone) == 3
    assert client.delete("c", filter="id in [4, 22, 103, 106]") == {"delete_count": 3}
    live -= gone
    assert client.memory_info("c") == before  # p1's copy was transient
    client.release_collection("c")
    client.load_collection("c")
    assert sorted(r["id"] for r in client.query("c", "id >= 0")) == sorted(live)


def test_a_restore_that_does_not_fit_leaves_the_client_open(tmp_path):
    """Reopening with a memory_limit too small for a persisted load: the client opens,
    the collection is NotLoad with the 1400 retrievable, the directory is not left locked,
    and a larger limit restores it."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    c.create_collection("c", schema=basic_schema(dim=32), index_params=index_params())
    c.insert("c", basic_rows(2000, dim=32))
    c.flush("c")
    c.close()
    c = MilvusClient(path, device="cpu", memory_limit=10_000)
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    err = c.take_load_error("c")
    assert err is not None and err.code == 1400
    assert c.memory_info()["used_bytes"] == 0
    c.close()
    c = MilvusClient(path, device="cpu")  # the lock was released; the intent was kept
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 2000}]
    c.close()


def test_search_during_a_load_says_it_is_loading(tmp_path, monkeypatch):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.insert("c", basic_rows(50))
    c.flush("c")
    c.release_collection("c")
    gate = _gate_loader(monkeypatch)
    c.load_collection("c", _async=True)
    with pytest.raises(MilvusException) as e:
        c.search("c", [[0.0] * 8])
    assert e.value.code == 101 and "it is loading" in e.value.message
    gate.set()
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    assert len(c.search("c", [[0.0] * 8], limit=3)[0]) == 3
    c.close()


def test_release_partitions_during_a_background_load_stops_loading_them(tmp_path,
                                                                        monkeypatch):
    """A partition released while a background load runs is not loaded after all: none of
    its bytes stay resident or counted (they stayed, counted but unsearchable)."""
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    for i, p in enumerate(("p1", "p2")):
        c.create_partition("c", p)
        for j in range(2):
            c.insert("c", basic_rows(200, start=1000 * i + 200 * j), partition_name=p)
            c.flush("c")
    c.release_collection("c")
    gate = _gate_loader(monkeypatch)
    c.load_collection("c", _async=True)
    c.release_partitions("c", ["p1"])
    gate.set()
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] == LoadState.Loading and time.time() < deadline:
        time.sleep(0.01)
    assert c.get_load_state("c", "p1") == {"state": LoadState.NotLoad}
    assert c.get_load_state("c", "p2") == {"state": LoadState.Loaded}
    assert not [o for o in c.allocator._bytes if o.partition == "p1"]
    info = c.memory_info()
    assert info["used_bytes"] == info["collections"]["c"]["bytes"]
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 400}]
    c.close()


def test_expanding_a_load_that_does_not_fit_keeps_what_is_loaded(tmp_path):
    """load_partitions of one more partition (or load_collection after a partial load)
    that does not fit is 1400 up front: what was loaded stays loaded and searchable, and
    the persisted intent is unchanged (it released first, leaving nothing)."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    c.create_collection("c", schema=basic_schema(dim=32), index_params=index_params())
    for i, p in enumerate(("p1", "p2")):
        c.create_partition("c", p)
        c.insert("c", basic_rows(1000, dim=32, start=1000 * i), partition_name=p)
    c.flush("c")
    c.release_collection("c")
    c.load_partitions("c", ["p1"])
    one = c.memory_info()["used_bytes"]
    c.close()
    c = MilvusClient(path, device="cpu", memory_limit=int(one * 1.5))
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    for grow in (lambda: c.load_partitions("c", ["p2"]), lambda: c.load_collection("c")):
        with pytest.raises(MilvusException) as e:
            grow()
        assert e.value.code == 1400
        assert c.get_load_state("c", "p1") == {"state": LoadState.Loaded}
        assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 1000}]
        assert c._db.collections["c"].manifest.load.partitions == ("p1",)
    c.close()


def test_a_seal_that_cannot_be_made_resident_never_leaves_a_stale_copy(tmp_path, monkeypatch):
    """The flush is durable before its rows move to resident sealed segments. That move
    frees the growing buffers first (so it does not need the rows' bytes twice); if the
    device still refuses, the resident copy is dropped (NotLoad, error kept), never left
    stale (new vectors came back under old ids, count(*) 10 against row_count 1010)."""
    from engine import resident as resident_mod

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema(dim=16), index_params=index_params())
    c.insert("c", basic_rows(1000, dim=16))
    c.flush("c")  # fits only because the growing buffer goes first
    assert c.get_load_state("c") == {"state": LoadState.Loaded}
    info = c.memory_info()
    assert info["used_bytes"] == info["collections"]["c"]["bytes"]
    real = resident_mod.ResidentSegment.put
    calls = []

    def refuse(self, *a, **k):
        calls.append(1)
        raise MilvusException("insufficient device memory (injected)", code=1400)

    c.insert("c", basic_rows(10, dim=16, start=5000, seed=7))
    monkeypatch.setattr(resident_mod.ResidentSegment, "put", refuse)
    c.flush("c")  # durable: no error here
    monkeypatch.setattr(resident_mod.ResidentSegment, "put", real)
    assert calls and c.get_load_state("c") == {"state": LoadState.NotLoad}
    err = c.take_load_error("c")
    assert err is not None and err.code == 1400 and "load it again" in err.message
    assert c.memory_info()["used_bytes"] == 0
    c.load_collection("c")
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 1010}]
    row = basic_rows(10, dim=16, start=5000, seed=7)[3]
    hit = c.search("c", [row["vec"]], limit=1)[0][0]
    assert hit["id"] == row["id"] and hit["distance"] == pytest.approx(0.0, abs=1e-5)
    c.close()


def test_load_state_of_several_partitions_is_the_least_advanced(cpu_client):
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.create_partition("c", "p1")
    c.release_collection("c")
    c.load_partitions("c", ["p1"])
    assert c.get_load_state("c", partition_names=["p1"]) == {"state": LoadState.Loaded}
    assert c.get_load_state("c", partition_names=["p1", "_default"]) == {
        "state": LoadState.NotLoad}
    assert c.get_load_state("c", partition_names=["p1", "nope"]) == {
        "state": LoadState.NotExist}


def _gate_loader(monkeypatch):
    """Hold every sealed-segment copy of a load until the returned event is set."""
    import threading

    from engine.loader import Loader

    gate = threading.Event()
    real = Loader._load_sealed

    def gated(self, res, seg, *args, **kwargs):
        gate.wait(30)
        return real(self, res, seg, *args, **kwargs)

    monkeypatch.setattr(Loader, "_load_sealed", gated)
    return gate


def test_a_seal_that_fails_once_is_reloaded_and_right(tmp_path, monkeypatch):
    """Residency applies a flush's Sealed record after the durable step; if applying it
    fails once (1400 while registering a new resident segment), the copy is stale: it is
    dropped and reloaded from disk, so the durable insert succeeds, the collection stays
    Loaded, and every row comes back under its own id."""
    from engine import resident as resident_mod

    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema(dim=16), index_params=index_params())
    c.insert("c", basic_rows(1000, dim=16))
    c.flush("c")
    c.insert("c", basic_rows(10, dim=16, start=5000, seed=7))
    real = resident_mod.ResidentSegment.put
    failed = []

    def once(self, *a, **k):
        if not failed:
            failed.append(1)
            raise MilvusException("insufficient device memory (injected)", code=1400)
        return real(self, *a, **k)

    monkeypatch.setattr(resident_mod.ResidentSegment, "put", once)
    c.flush("c")
    monkeypatch.setattr(resident_mod.ResidentSegment, "put", real)
    assert failed and c.get_load_state("c") == {"state": LoadState.Loaded}
    assert c.take_load_error("c") is None
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 1010}]
    assert c.get_collection_stats("c") == {"row_count": 1010}
    for row in basic_rows(10, dim=16, start=5000, seed=7):
        hit = c.search("c", [row["vec"]], limit=1)[0][0]
        assert hit["id"] == row["id"] and hit["distance"] == pytest.approx(0.0, abs=1e-5)
    assert _info_bytes(c, "c") == _resident_nbytes(c, "c")
    info = c.memory_info()
    assert info["used_bytes"] == info["collections"]["c"]["bytes"]
    c.close()


def test_listing_and_describing_wait_for_a_writer(cpu_client):
    """list_collections, describe_collection and list_indexes read under the lock: while a
    writer holds it they wait, and answer once it is released."""
    import threading

    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    lock = c._db.lock
    for call in (c.list_collections, lambda: c.describe_collection("c"),
                 lambda: c.list_indexes("c")):
        got = []
        lock.acquire()
        t = threading.Thread(target=lambda: got.append(call()))
        t.start()
        t.join(0.2)
        assert t.is_alive() and not got  # blocked behind the writer
        lock.release()
        t.join(10)
        assert got


def test_a_cache_that_does_not_fit_never_fails_a_search(cpu_client):
    """Squared norms (L2) and typed JSON paths are caches a read builds: with no room on
    the device they serve that search only, with a warning, and the answer is the same."""
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    rows = basic_rows(50)
    c.insert("c", rows)
    alloc = c.allocator
    before = c.memory_info("c")
    alloc.capacity = alloc.used_bytes  # nothing free
    with pytest.warns(RuntimeWarning, match="do not fit"):
        hit = c.search("c", [rows[7]["vec"]], limit=1)[0][0]
    assert hit["id"] == 7 and hit["distance"] == pytest.approx(0.0, abs=1e-5)
    assert c.memory_info("c") == before  # nothing was kept

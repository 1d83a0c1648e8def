"""Disk is the truth: a process killed with SIGKILL mid insert/flush loses no acknowledged
row, and every crash leaves a store that opens."""
import errno
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from engine import LoadState, MilvusClient
from engine import collection as coll_mod
from engine.errors import MilvusException, StorageError, WriteFailed
from engine.storage import manifest as manifest_mod
from engine.storage import wal as wal_mod

from ..conftest import basic_rows, basic_schema, index_params

WRITER = Path(__file__).with_name("crash_writer.py")
BATCH = 37


def _client_with_rows(tmp_path, n: int, **kwargs) -> tuple[str, MilvusClient]:
    """A data directory with collection "c" (loaded, FLAT) holding rows 0..n-1, growing."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu", **kwargs)
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.insert("c", basic_rows(n))
    return path, c


def _no_space(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


def _acked(ack: Path) -> tuple[int, set[int]]:
    last, deleted = -1, set()
    for line in ack.read_text().splitlines():
        if line.startswith("d"):
            deleted.add(int(line[1:]))
        elif line:
            last = int(line)
    return last, deleted


@pytest.mark.parametrize("kill_after", [0.4, 1.1, 2.3])
def test_sigkill_loses_no_acknowledged_row(tmp_path, kill_after):
    data, ack = tmp_path / "d", tmp_path / "ack"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    for round_ in range(2):  # kill twice: the second run writes on top of a recovered store
        proc = subprocess.Popen([sys.executable, str(WRITER), str(data), str(ack), str(BATCH)],
                                env=env)
        deadline = time.time() + 60
        while (not ack.exists() or ack.stat().st_size == 0) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        last, deleted = _acked(ack)
        assert last >= 0
        c = MilvusClient(str(data), device="cpu")
        c.create_index("crash", index_params("vec"))
        c.load_collection("crash")
        ids = {r["id"] for r in c.query("crash", f"id <= {last}", output_fields=["id"])}
        expected = set(range(last + 1)) - deleted
        # the kill may fall between a delete of `last` returning and its ack line: that one
        # key may be gone without an ack; every other acknowledged write must be exact
        assert ids - {last} == expected - {last}, \
            f"round {round_}: lost {sorted(expected - ids)[:10]}, extra {sorted(ids - expected)[:10]}"
        extra = c.query("crash", f"id > {last}", output_fields=["count(*)"])[0]["count(*)"]
        assert extra in (0, BATCH)  # the unacknowledged batch: all or nothing
        row = c.query("crash", f"id == {last}", output_fields=["name", "k"])
        if last in ids:
            assert row == [{"id": last, "name": f"n{last}", "k": last}]
        c.release_collection("crash")
        c.drop_index("crash", "vec")
        c.close()
        ack.unlink()  # the next round restarts ids at 0: they are upserted-by-insert duplicates
        if round_ == 0:
            c = MilvusClient(str(data), device="cpu")
            c.drop_collection("crash")
            c.close()


@pytest.mark.parametrize("damaged", ["segments/00000001/f100.safetensors", "manifest.json"])
def test_a_damaged_collection_does_not_close_the_directory(tmp_path, damaged):
    """A file of one collection cut short behind the engine's back: the directory still
    opens, the other collections work, every call on the damaged one is a StorageError that
    names it and the fix, nothing rewrites the file, and dropping it frees the name."""
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    for name in ("c", "ok"):
        c.create_collection(name, schema=basic_schema(), index_params=index_params())
        c.insert(name, basic_rows(20))
        c.flush(name)
    c.release_collection("ok")
    folder = c._db.collections["c"].path
    c.close()
    bad = folder / damaged
    cut = bad.read_bytes()[:-30]
    bad.write_bytes(cut)
    c = MilvusClient(path, device="cpu")
    assert c.list_collections() == ["c", "ok"] and c.has_collection("c")
    c.load_collection("ok")
    assert c.query("ok", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 20}]
    calls = [lambda: c.describe_collection("c"), lambda: c.get_load_state("c"),
             lambda: c.load_collection("c"), lambda: c.insert("c", basic_rows(1, start=50)),
             lambda: c.search("c", [[0.0] * 8]), lambda: c.release_collection("c"),
             lambda: c.create_collection("c", schema=basic_schema())]
    for call in calls:
        with pytest.raises(StorageError) as e:
            call()
        assert e.value.code == 65535 and "collection c" in e.value.message
        assert str(bad) in e.value.message  # the damaged file itself is named
        assert "drop the collection" in e.value.message
    assert bad.read_bytes() == cut
    c.drop_collection("c")
    assert c.list_collections() == ["ok"] and not folder.exists()
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    assert c.insert("c", basic_rows(3))["insert_count"] == 3
    c.close()


def test_a_write_the_disk_refuses_changes_nothing_and_the_next_one_lands(tmp_path, monkeypatch):
    path, c = _client_with_rows(tmp_path, 5)
    real_write = wal_mod.os.write
    monkeypatch.setattr(wal_mod.os, "write", _no_space)
    with pytest.raises(WriteFailed, match="free disk space"):
        c.insert("c", basic_rows(3, start=10))
    with pytest.raises(WriteFailed):
        c.delete("c", ids=[0])
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 5}]
    monkeypatch.setattr(wal_mod.os, "write", real_write)
    c.insert("c", basic_rows(2, start=20))
    c.close()
    c = MilvusClient(path, device="cpu")
    c.load_collection("c")
    assert sorted(r["id"] for r in c.query("c", "id >= 0")) == [0, 1, 2, 3, 4, 20, 21]
    c.close()


def test_a_flush_the_disk_refuses_leaves_no_trace_and_loses_no_row(tmp_path, monkeypatch):
    """The disk fills up while a flush writes its second segment: the flush fails with
    WriteFailed, the manifest and the segment folders are as before and every row is still
    there once. A seal the disk refuses inside an insert or at close only warns: those rows
    are durable in the WAL. Once there is room, flush works and nothing is doubled."""
    path, c = _client_with_rows(tmp_path, 10)
    c.create_partition("c", "p1")
    c.insert("c", basic_rows(10, start=100), partition_name="p1")
    c.delete("c", ids=[3])
    want = [i for i in range(10) if i != 3] + list(range(100, 110))
    root = c._db.collections["c"].path
    manifest = (root / "manifest.json").read_bytes()
    real = coll_mod.write_segment
    calls = []

    def second_fails(seg_dir, batch, stems):
        calls.append(seg_dir)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(seg_dir, batch, stems)

    monkeypatch.setattr(coll_mod, "write_segment", second_fails)
    with pytest.raises(WriteFailed, match="Nothing was sealed"):
        c.flush("c")
    assert (root / "manifest.json").read_bytes() == manifest
    assert list((root / "segments").iterdir()) == list((root / "deletes").iterdir()) == []
    assert sorted(r["id"] for r in c.query("c", "id >= 0")) == want
    monkeypatch.setattr(coll_mod, "write_segment", _no_space)
    with pytest.warns(RuntimeWarning, match="not sealed at close"):
        c.close()
    c = MilvusClient(path, device="cpu", segment_max_bytes=1)  # every insert seals
    with pytest.warns(RuntimeWarning, match="automatic seal failed"):
        assert c.insert("c", basic_rows(2, start=200))["insert_count"] == 2
    monkeypatch.setattr(coll_mod, "write_segment", real)
    c.flush("c")
    c.close()
    c = MilvusClient(path, device="cpu")
    c.load_collection("c")
    assert sorted(r["id"] for r in c.query("c", "id >= 0")) == want + [200, 201]
    assert (root / "wal.log").stat().st_size == 0
    c.close()


def test_manifest_writes_the_disk_refuses_are_undone(tmp_path, monkeypatch):
    """Every state change that only rewrites the manifest (create a collection or a
    partition, record a load) is undone in memory too when the disk refuses it, and says
    so; opening a directory whose loads are restored writes nothing, so it works on a full
    disk."""
    path, c = _client_with_rows(tmp_path, 10)
    c.release_collection("c")
    real = manifest_mod.write_manifest

    def refuse_manifests(write):
        monkeypatch.setattr(manifest_mod, "write_manifest", write)
        monkeypatch.setattr(coll_mod, "write_manifest", write)

    refuse_manifests(_no_space)
    for call in (lambda: c.create_partition("c", "p1"), lambda: c.load_collection("c"),
                 lambda: c.create_collection("d", schema=basic_schema())):
        with pytest.raises(WriteFailed, match="free disk space"):
            call()
    assert c.list_partitions("c") == ["_default"]
    assert c.get_load_state("c") == {"state": LoadState.NotLoad}
    assert c.memory_info()["used_bytes"] == 0
    assert c.list_collections() == ["c"]
    assert list((tmp_path / "d" / "collections").iterdir()) == [c._db.collections["c"].path]
    refuse_manifests(real)
    c.create_partition("c", "p1")
    c.load_collection("c")
    c.close()
    refuse_manifests(_no_space)
    c = MilvusClient(path, device="cpu")  # restores the load: no manifest write needed
    deadline = time.time() + 30
    while c.get_load_state("c")["state"] != LoadState.Loaded and time.time() < deadline:
        time.sleep(0.01)
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 10}]
    assert c.list_partitions("c") == ["_default", "p1"]
    refuse_manifests(real)
    c.close()


def test_a_wal_that_cannot_be_emptied_after_a_seal_only_warns(tmp_path, monkeypatch):
    """The seal is on disk (manifest saved) when emptying the WAL fails: the flush warns
    and counts as done; the rows are not sealed a second time and the old records are
    skipped at the next open."""
    path, c = _client_with_rows(tmp_path, 10)

    def refuse(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(wal_mod.os, "ftruncate", refuse)
    with pytest.warns(RuntimeWarning, match="could not be emptied"):
        c.flush("c")
    assert len(c.persistent_segments("c")) == 1
    monkeypatch.undo()
    c.flush("c")  # nothing new to seal
    assert len(c.persistent_segments("c")) == 1
    c.close()
    c = MilvusClient(path, device="cpu")
    c.load_collection("c")
    assert sorted(r["id"] for r in c.query("c", "id >= 0")) == list(range(10))
    c.close()


class _FullDisk:
    """os.fsync that fails with ENOSPC from its ``at``-th call on (every durable write site
    fsyncs: WAL appends, segment files and folders, manifests, catalog, index files)."""

    def __init__(self, at: int | None) -> None:
        self.at, self.calls = at, 0
        self.real = os.fsync

    def __call__(self, fd):
        self.calls += 1
        if self.at is not None and self.calls >= self.at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd)


def _full_disk_scenario(c, acked: set, deleted: set) -> None:
    """Writes of every kind; what returned is recorded as acknowledged."""
    def insert(rows, **kw):
        c.insert("c", rows, **kw)
        acked.update(r["id"] for r in rows)

    def delete(ids):
        c.delete("c", ids=ids)
        deleted.update(ids)

    steps = [lambda: insert(basic_rows(20, start=100)), lambda: delete([1, 101]),
             lambda: c.flush("c"), lambda: c.create_partition("c", "p1"),
             lambda: insert(basic_rows(5, start=200), partition_name="p1"),
             lambda: c.release_collection("c"), lambda: c.drop_index("c", "vec"),
             lambda: c.create_index("c", _ivf()), lambda: c.load_collection("c"),
             lambda: insert(basic_rows(5, start=300)), lambda: c.flush("c"),
             lambda: c.create_collection("d", schema=basic_schema(),
                                         index_params=index_params()),
             lambda: c.drop_collection("d")]
    for step in steps:
        try:
            step()
        except WriteFailed as e:
            assert e.code == 65535 and re.search(
                "free disk space|check the disk|open the data directory again", e.message)
        except MilvusException:  # a consequence of an earlier refused step (no partition,
            pass                 # index still there, not loaded): still a Milvus error


def _ivf():
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", "IVF_FLAT", metric_type="L2", params={"nlist": 4})
    return p


def test_a_full_disk_at_every_write_site(tmp_path, monkeypatch):
    """ENOSPC injected at the 1st, 2nd, ... fsync of a run of inserts, deletes, flushes, a
    partition, an IVF build, a load and a create/drop: each refused call is WriteFailed,
    no temp file is left, close() warns instead of raising and frees the directory, and a
    reopen has every acknowledged row (and no deleted one)."""
    probe = _FullDisk(None)
    path, c = _client_with_rows(tmp_path / "probe", 30)
    monkeypatch.setattr(os, "fsync", probe)
    _full_disk_scenario(c, set(), set())
    monkeypatch.setattr(os, "fsync", probe.real)
    c.close()
    assert probe.calls >= 20
    for at in range(1, probe.calls + 1):
        base = tmp_path / f"run{at}"
        path, c = _client_with_rows(base, 30)
        acked, deleted = set(range(30)), set()
        fault = _FullDisk(at)
        monkeypatch.setattr(os, "fsync", fault)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # seals and folder fsyncs warn
            _full_disk_scenario(c, acked, deleted)
        assert not [p for p in Path(path).rglob("*") if p.name.endswith(".tmp")], at
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "not sealed at close" is fine
            c.close()
        monkeypatch.setattr(os, "fsync", fault.real)
        c = MilvusClient(path, device="cpu")  # the lock was released
        if c.get_load_state("c")["state"] != LoadState.Loaded:
            c.release_collection("c")
            if not c.list_indexes("c"):
                c.create_index("c", index_params())
            c.load_collection("c")
        deadline = time.time() + 30
        while c.get_load_state("c")["state"] == LoadState.Loading and time.time() < deadline:
            time.sleep(0.01)
        got = {r["id"] for r in c.query("c", "id >= 0", output_fields=["id"])}
        assert got == acked - deleted, (at, sorted(got ^ (acked - deleted))[:5])
        c.close()


def test_a_shard_writer_error_is_write_failed_and_leaves_no_temp(tmp_path, monkeypatch):
    """safetensors reports a failed write as its own SafetensorError, not OSError: a flush
    must still undo and say WriteFailed (it raised SafetensorError, skipped the undo and
    left segments/*.tmp behind), and close() must warn, not raise."""
    from safetensors import SafetensorError

    from engine.storage import segments as seg_mod

    path, c = _client_with_rows(tmp_path, 10)
    real = seg_mod.save_file

    def refuse(tensors, filename):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: No space left on device (os error 28)")

    monkeypatch.setattr(seg_mod, "save_file", refuse)
    with pytest.raises(WriteFailed, match="Nothing was sealed"):
        c.flush("c")
    root = c._db.collections["c"].path
    assert not [p for p in root.rglob("*") if ".tmp" in p.name]
    with pytest.warns(RuntimeWarning, match="not sealed at close"):
        c.close()
    monkeypatch.setattr(seg_mod, "save_file", real)
    c = MilvusClient(path, device="cpu")  # the lock was released
    c.load_collection("c")
    assert sorted(r["id"] for r in c.query("c", "id >= 0")) == list(range(10))
    c.close()


def test_a_format_1_directory_is_refused_clearly_and_stays_unlocked(tmp_path):
    old = tmp_path / "d" / "collections" / "docs"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text('{"format": 1, "name": "docs"}')
    for _ in range(2):  # the failed open leaves no lock behind
        with pytest.raises(StorageError, match="older Hotset"):
            MilvusClient(str(tmp_path / "d"), device="cpu")
    assert (old / "manifest.json").read_text() == '{"format": 1, "name": "docs"}'

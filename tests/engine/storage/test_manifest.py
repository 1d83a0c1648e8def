"""The manifest on its own: named mutators, its one writer (draft, commit, change), a
refused write that leaves the file and ``current`` as they were, and the round trip."""
from __future__ import annotations

import errno
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import WriteFailed
from engine.storage import manifest as mod
from engine.storage.checksum import CorruptFile
from engine.storage.manifest import (NOT_LOADED, LoadIntent, Manifest, ManifestFile,
                                     read_manifest, write_manifest)


def _segment(seg_id: int, partition: str = "_default", layout: str | None = None) -> dict:
    meta = {"id": seg_id, "partition": partition, "num_rows": 3, "sealed_seq": 1,
            "bytes": {"id": 24}, "files": {"f100.safetensors": {"header": "0"},
                                           "f101.ivf.safetensors": {"file": "1"}}}
    if layout:
        meta["ivf"] = layout
    return meta


def _file(tmp_path) -> ManifestFile:
    m = Manifest("c", {"fields": []})
    write_manifest(tmp_path, m)
    return ManifestFile(tmp_path, m)


def test_changes_are_made_on_a_draft_and_committed_whole(tmp_path):
    mf = _file(tmp_path)
    with mf.change() as m:
        m.add_partition("p1")
        m.add_segment(_segment(m.new_segment_id(), "p1"))
        m.set_load(LoadIntent(True, ("id", "vec"), False, ("p1",)))
    on_disk = read_manifest(tmp_path)
    assert on_disk == mf.current
    assert on_disk.partitions == ["_default", "p1"] and on_disk.next_segment_id == 2
    assert on_disk.load == LoadIntent(True, ("id", "vec"), False, ("p1",))


def test_an_exception_in_the_block_discards_the_draft(tmp_path):
    mf = _file(tmp_path)
    before = (tmp_path / mod.FILE).read_bytes()
    with pytest.raises(RuntimeError):
        with mf.change() as m:
            m.add_partition("p1")
            raise RuntimeError("changed my mind")
    assert mf.current.partitions == ["_default"]
    assert (tmp_path / mod.FILE).read_bytes() == before


def test_a_refused_write_is_write_failed_and_changes_nothing(tmp_path, monkeypatch):
    mf = _file(tmp_path)
    before = (tmp_path / mod.FILE).read_bytes()

    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mod, "write_atomic", no_space)
    with pytest.raises(WriteFailed, match="free disk space"):
        with mf.change("The partition was not created") as m:
            m.add_partition("p1")
    assert mf.current.partitions == ["_default"]  # nothing to re-read: never changed
    assert (tmp_path / mod.FILE).read_bytes() == before


def test_mutators():
    m = Manifest("c", {})
    ids = [m.new_segment_id() for _ in range(3)]
    assert ids == [1, 2, 3] and m.new_index_id() == 1 and m.new_index_id() == 2
    m.add_partition("p1")
    for i, part in zip(ids, ["_default", "p1", "p1"]):
        m.add_segment(_segment(i, part, layout="vec"))
    assert m.remove_partition("p1") == [2, 3] and [s["id"] for s in m.segments] == [1]
    m.add_index({"index_name": "vi", "field_name": "vec", "trained": False})
    m.set_trained("vi", "abc")
    assert m.index_on("vec")["trained"] and m.index("vi")["checksum"] == "abc"
    assert m.clear_layout("vec", "f101.ivf.safetensors") == [1]
    assert "ivf" not in m.segment(1) and "f101.ivf.safetensors" not in m.segment(1)["files"]
    assert m.remove_index("vi")["index_name"] == "vi" and m.indexes == []
    m.add_delete_file("0001.arrow", "d1")
    assert m.delete_files == ["0001.arrow"] and m.delete_sums == {"0001.arrow": "d1"}
    m.set_flushed(7)
    assert m.flushed_seq == 7
    with pytest.raises(KeyError):
        m.segment(2)


def test_adopt_takes_only_the_segments_it_does_not_know():
    mine, theirs = Manifest("c", {}), Manifest("c", {})
    mine.add_segment(_segment(1))
    theirs.add_segment(_segment(1))
    theirs.add_segment(_segment(100))
    theirs.next_segment_id = 101
    assert [s["id"] for s in mine.adopt(theirs)] == [100]
    assert [s["id"] for s in mine.segments] == [1, 100] and mine.next_segment_id == 101
    assert mine.adopt(theirs) == []


def test_damaged_or_foreign_files_are_corrupt(tmp_path):
    write_manifest(tmp_path, Manifest("c", {}))
    raw = (tmp_path / mod.FILE).read_bytes()
    (tmp_path / mod.FILE).write_bytes(raw.replace(b'"c"', b'"d"'))
    with pytest.raises(CorruptFile):
        read_manifest(tmp_path)
    d = Manifest("c", {}).to_dict()
    d["format"] = 1
    (tmp_path / mod.FILE).write_bytes(mod.sealed_json(d))
    with pytest.raises(CorruptFile, match="format 1"):
        read_manifest(tmp_path)


_NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(_NAMES, unique=True, max_size=4), nseg=st.integers(0, 5),
       fields=st.none() | st.lists(_NAMES, max_size=3).map(tuple),
       loaded=st.booleans(), seq=st.integers(0, 1 << 40))
def test_round_trip(tmp_path_factory, parts, nseg, fields, loaded, seq):
    folder = tmp_path_factory.mktemp("m")
    m = Manifest("c", {"fields": [{"name": "id"}]})
    for p in parts:
        m.add_partition(p)
    for _ in range(nseg):
        m.add_segment(_segment(m.new_segment_id(), m.partitions[-1]))
    m.set_flushed(seq)
    m.set_load(LoadIntent(loaded, fields) if loaded else NOT_LOADED)
    write_manifest(folder, m)
    back = read_manifest(folder)
    assert back == m
    assert json.loads(mod.sealed_json(back.to_dict()))["format"] == mod.FORMAT

"""Storage round trips (property tests) and WAL recovery."""
import json
import os

import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.columns import Batch, batch_from_bytes, batch_to_bytes, concat, take
from engine.storage.files import write_json_atomic
from engine.storage.segments import (has_valid, read_arrow, read_deletes, read_tensor,
                                     write_deletes, write_segment)
from engine.storage.wal import Kind, WriteAheadLog, replay

_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@st.composite
def batches(draw, dim=None):
    n = draw(st.integers(0, 20))
    ints = draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n))
    floats = draw(st.lists(st.floats(width=32, allow_nan=False), min_size=n, max_size=n))
    dim = dim or draw(st.integers(1, 5))
    vecs = draw(st.lists(st.lists(st.floats(-1e3, 1e3, width=32), min_size=dim, max_size=dim),
                         min_size=n, max_size=n))
    strs = draw(st.lists(st.none() | _text, min_size=n, max_size=n))
    arrs = draw(st.lists(st.lists(st.integers(-5, 5), max_size=3), min_size=n, max_size=n))
    valid = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    b = Batch(n)
    b.cols["i"] = torch.tensor(ints, dtype=torch.int64)
    b.cols["f"] = torch.tensor(floats, dtype=torch.float32)
    b.cols["v"] = torch.tensor(vecs, dtype=torch.float32).reshape(n, dim)
    b.cols["h"] = b.cols["v"].to(torch.bfloat16)
    b.valid["f"] = torch.tensor(valid, dtype=torch.bool)
    b.cols["s"] = pa.array(strs, type=pa.string())
    b.cols["a"] = pa.array(arrs, type=pa.list_(pa.int32()))
    return b


def _same(a: Batch, b: Batch) -> None:
    assert a.num_rows == b.num_rows and set(a.cols) == set(b.cols) and set(a.valid) == set(b.valid)
    for k, col in a.cols.items():
        if isinstance(col, torch.Tensor):
            assert col.dtype == b.cols[k].dtype and torch.equal(col, b.cols[k]), k
        else:
            assert col.equals(b.cols[k]), k
    for k, v in a.valid.items():
        assert torch.equal(v, b.valid[k])


@settings(max_examples=60, deadline=None)
@given(batches())
def test_wal_record_round_trip(batch):
    _same(batch, batch_from_bytes(batch_to_bytes(batch)))


@settings(max_examples=40, deadline=None)
@given(batches())
def test_segment_round_trip(tmp_path_factory, batch):
    seg = tmp_path_factory.mktemp("seg") / "00000001"
    stems = {name: f"f{100 + i}" for i, name in enumerate(batch.cols)}
    sizes, sums = write_segment(seg, batch, stems)
    assert sorted(p.name for p in seg.iterdir()) == sorted(sums)  # every file has checksums
    back = Batch(batch.num_rows)
    for name, col in batch.cols.items():
        stem = stems[name]
        if isinstance(col, torch.Tensor):
            file_sums = sums[f"{stem}.safetensors"]
            back.cols[name] = read_tensor(seg, stem, sums=file_sums)
            if has_valid(seg, stem):
                back.valid[name] = read_tensor(seg, stem, "valid", sums=file_sums)
            assert sizes[name] == col.numel() * col.element_size() + (
                batch.num_rows if name in batch.valid else 0)
        else:
            back.cols[name] = read_arrow(seg, stem, sums[f"{stem}.arrow"])
    _same(batch, back)
    assert not seg.with_name(seg.name + ".tmp").exists()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4).flatmap(lambda d: st.lists(batches(d), min_size=1, max_size=3)),
       st.data())
def test_concat_take(batches_, data):
    whole = concat(batches_)
    n = whole.num_rows
    idx = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=10 if n else 0))
    part = take(whole, torch.tensor(idx, dtype=torch.int64))
    assert part.num_rows == len(idx)
    if idx:
        assert part.cols["i"].tolist() == [whole.cols["i"][j].item() for j in idx]
        assert part.cols["s"].to_pylist() == [whole.cols["s"][j].as_py() for j in idx]


def test_wal_torn_tail_is_cut(tmp_path):
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    b = Batch(2, {"pk": torch.tensor([1, 2])})
    wal.append(1, Kind.INSERT, "_default", b)
    wal.append(2, Kind.DELETE, "p1", Batch(1, {"pk": torch.tensor([1])}))
    good = path.stat().st_size
    wal.append(3, Kind.INSERT, "_default", b)
    wal.close()
    with open(path, "rb+") as fh:  # tear the last record in half
        fh.truncate(good + 10)
    recs = list(replay(path))
    assert [(r.seq, r.kind, r.partition) for r in recs] == [(1, Kind.INSERT, "_default"),
                                                             (2, Kind.DELETE, "p1")]
    assert path.stat().st_size == good
    with open(path, "rb+") as fh:  # a flipped byte in the last payload stops replay there
        fh.seek(good - 3)
        fh.write(b"\xff")
    assert [r.seq for r in replay(path)] == [1]


def test_wal_append_that_fails_half_way_is_cut_back(tmp_path, monkeypatch):
    """Disk full in the middle of a record: the half record is cut off before the error
    is raised, so the next append follows the last good record and replay sees all of the
    acknowledged ones."""
    import errno

    from engine.errors import WriteFailed
    from engine.storage import wal as wal_mod

    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    b = Batch(2, {"pk": torch.tensor([1, 2])})
    wal.append(1, Kind.INSERT, "_default", b)
    good = path.stat().st_size
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_mod.os, "write", half_then_full)
    with pytest.raises(WriteFailed) as e:
        wal.append(2, Kind.INSERT, "_default", b)
    assert e.value.code == 65535 and "No space left" in e.value.message
    assert "Nothing was written" in e.value.message
    assert path.stat().st_size == good == wal.size()
    monkeypatch.setattr(wal_mod.os, "write", real_write)
    wal.append(2, Kind.DELETE, "_default", Batch(1, {"pk": torch.tensor([2])}))
    wal.close()
    wal.close()  # twice is fine
    assert [(r.seq, r.kind) for r in replay(path)] == [(1, Kind.INSERT), (2, Kind.DELETE)]


@pytest.mark.parametrize("where", ["payload", "header"])
def test_wal_damage_before_an_intact_record_is_refused_not_cut(tmp_path, where):
    """Only a damaged *tail* can be a write that was never acknowledged; a damaged record
    with an intact one after it means acknowledged writes would be thrown away."""
    path = tmp_path / "wal.log"
    wal = WriteAheadLog(path)
    b = Batch(2, {"pk": torch.tensor([1, 2])})
    wal.append(1, Kind.INSERT, "_default", b)
    first = path.stat().st_size
    wal.append(2, Kind.INSERT, "_default", b)
    wal.append(3, Kind.DELETE, "_default", Batch(1, {"pk": torch.tensor([1])}))
    wal.close()
    data = bytearray(path.read_bytes())
    data[first + (30 if where == "payload" else 1)] ^= 0xFF  # inside record 2
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match=f"record at byte {first} is damaged"):
        list(replay(path))
    assert path.read_bytes() == bytes(data)  # nothing cut
    data[first + (30 if where == "payload" else 1)] ^= 0xFF  # repaired, then zeros after the
    path.write_bytes(bytes(data) + bytes(100))  # last record (a crash while extending): a tail
    assert [r.seq for r in replay(path)] == [1, 2, 3]
    assert path.stat().st_size == len(data)


def test_deletes_file_round_trip(tmp_path):
    digest = write_deletes(tmp_path / "d.arrow", pa.array(["a", "b"]), torch.tensor([4, 9]),
                           ["", "p1"])
    keys, seqs, parts = read_deletes(tmp_path / "d.arrow", digest)
    assert keys.to_pylist() == ["a", "b"] and seqs.tolist() == [4, 9]
    assert parts.to_pylist() == ["", "p1"]


def test_atomic_manifest_replace(tmp_path):
    p = tmp_path / "m.json"
    write_json_atomic(p, {"a": 1})
    write_json_atomic(p, {"a": 2})
    assert json.loads(p.read_text()) == {"a": 2}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]

"""Silent corruption is detected: bytes flipped inside a file of each kind make a clear
StorageError naming the file (at open or at load, with the load rolled back), the other
collection keeps working, ``python -m engine verify`` names the file, and once the file is
restored everything works again."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import LoadState, MilvusClient
from engine.errors import StorageError
from engine.storage.segments import shard_header
from engine.verify import verify

from ...conftest import basic_rows, basic_schema, column_file, index_params

ROOT = Path(__file__).parents[3]


def _make(path: Path) -> MilvusClient:
    c = MilvusClient(str(path), device="cpu")
    for name in ("c", "ok"):
        c.create_collection(name, schema=basic_schema(dim=64), index_params=index_params())
        for i in range(2):
            c.insert(name, basic_rows(1000, dim=64, start=i * 1000, seed=i))
            c.flush(name)
        for i in range(3):  # stays in the WAL
            c.insert(name, basic_rows(5, dim=64, start=5000 + i * 5, seed=9))
        c.delete(name, ids=[7])
    c.release_collection("c")
    c.release_collection("ok")
    return c


def _crash(c: MilvusClient) -> None:
    """Stop using ``c`` as a killed process would: no seal at close, the WAL keeps its
    records; the directory lock is freed for the next open."""
    for coll in c._db.collections.values():
        coll.close()
    c._db._dir.close()
    c._db.closed = True


def _flip(path: Path, start: int, count: int = 550) -> bytes:
    good = path.read_bytes()
    bad = bytearray(good)
    for i in range(start, min(start + count, len(bad))):
        bad[i] ^= 0x5A
    path.write_bytes(bytes(bad))
    return good


def _target(c: MilvusClient, kind: str) -> tuple[Path, int]:
    """The file of ``kind`` in collection c, and where its data (past any header) starts."""
    coll = c._db.collections["c"]
    seg = coll.segment_dir(coll.sealed[-1].id)
    if kind in ("vector shard", "key shard"):
        path = seg / column_file(c, "c", "vec" if kind == "vector shard" else "id")
        return path, shard_header(path)[0] + 100
    if kind == "arrow column":
        return seg / column_file(c, "c", "title"), 200
    if kind == "manifest":
        return coll.path / "manifest.json", 40
    if kind == "wal":
        return coll.path / "wal.log", 40  # inside the first of three records
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, when", [("vector shard", "load"), ("key shard", "open"),
                                        ("arrow column", "load"), ("manifest", "open"),
                                        ("wal", "open")])
def test_a_damaged_file_is_named_and_a_restored_one_loads(tmp_path, kind, when):
    data = tmp_path / "d"
    c = _make(data)
    path, start = _target(c, kind)
    _crash(c)
    count = 8 if kind in ("manifest", "wal") else 550
    good = _flip(path, start, count)
    c = MilvusClient(str(data), device="cpu")
    if when == "open":
        with pytest.raises(StorageError) as e:
            c.load_collection("c")
    else:
        used = c.memory_info()["used_bytes"]
        with pytest.raises(StorageError) as e:
            c.load_collection("c")
        assert c.get_load_state("c") == {"state": LoadState.NotLoad}
        assert c.memory_info()["used_bytes"] == used
    assert str(path) in e.value.message and "restore" in e.value.message
    c.load_collection("ok")  # the other collection is unaffected
    assert c.query("ok", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 2014}]
    report = verify(data)
    assert [p.path for p in report.problems] == [path], report
    out = subprocess.run([sys.executable, "-m", "engine", "verify", "--data", str(data)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and f"DAMAGED collection c: {path}" in out.stdout
    c.close()
    path.write_bytes(good)  # restored from a backup
    assert verify(data).problems == ()
    c = MilvusClient(str(data), device="cpu")
    c.load_collection("c")
    assert c.query("c", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 2014}]
    hit = c.search("c", [np.ones(64).tolist()], limit=3, output_fields=["title"])[0]
    assert len(hit) == 3
    c.close()


def test_verify_intact_directory(tmp_path):
    c = _make(tmp_path / "d")
    _crash(c)
    report = verify(tmp_path / "d")
    assert report.problems == () and report.files >= 2 * (2 * 6 + 2)
    out = subprocess.run([sys.executable, "-m", "engine", "verify", "--data",
                          str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "0 damaged: intact" in out.stdout

"""Databases (engine/databases.py): namespaces of one data directory, each with its own
collections, aliases and load states on one shared device budget; properties honoured or
refused; a collection moved between databases is never lost."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine import MilvusClient
from engine.errors import DatabaseNotFound, MilvusException, ParamError

from ..conftest import basic_rows, basic_schema, index_params


def _coll(c: MilvusClient, name: str = "docs", n: int = 20, start: int = 0) -> None:
    c.create_collection(name, schema=basic_schema(), index_params=index_params())
    c.insert(name, basic_rows(n, start=start))


@pytest.fixture
def dirpath(tmp_path):
    return str(tmp_path / "d")


def test_namespaces_share_one_device(dirpath):
    c = MilvusClient(dirpath, device="cpu")
    c.create_database("db1")
    _coll(c, n=20)
    other = c.in_database("db1")
    _coll(other, n=5, start=100)
    assert c.list_collections() == ["docs"] and other.list_collections() == ["docs"]
    assert c.get_collection_stats("docs")["row_count"] == 20
    assert other.query("docs", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 5
    info = c.memory_info()["collections"]
    assert set(info) == {"docs", "db1/docs"}
    other.release_collection("docs")  # frees db1's copy only
    assert set(c.memory_info()["collections"]) == {"docs"}
    assert len(c.search("docs", [basic_rows(1)[0]["vec"]], limit=3)[0]) == 3
    c.use_database("db1")
    assert c.db_name == "db1"
    c.create_alias("docs", "a")
    with pytest.raises(MilvusException):
        c.in_database("default").describe_alias("a")  # aliases are per database
    c.close()


def test_create_list_describe_alter_drop(dirpath):
    c = MilvusClient(dirpath, device="cpu")
    c.create_database("db1", properties={"database.max.collections": 1})
    assert c.list_databases() == ["default", "db1"]
    assert c.describe_database("db1") == {"name": "db1", "database.max.collections": "1"}
    c.alter_database_properties("db1", {"database.force.deny.reading": True})
    c.drop_database_properties("db1", ["database.max.collections"])
    assert c.describe_database("db1") == {"name": "db1", "database.force.deny.reading": "true"}
    with pytest.raises(MilvusException, match="already exist"):
        c.create_database("db1")
    with pytest.raises(ParamError, match="Invalid database name"):
        c.create_database("a/b")
    with pytest.raises(ParamError, match="not supported by Hotset"):
        c.create_database("db2", properties={"database.diskQuota.mb": 10})
    with pytest.raises(ParamError, match="must be 1"):
        c.create_database("db2", properties={"database.replica.number": 2})
    assert c.list_databases() == ["default", "db1"]  # refused: nothing made
    _coll(c.in_database("db1"))
    with pytest.raises(MilvusException, match="not empty"):
        c.drop_database("db1")
    with pytest.raises(MilvusException, match="can not drop default database"):
        c.drop_database("default")
    c.drop_database("nope")  # Milvus: dropping a missing database succeeds
    c.in_database("db1").drop_collection("docs")
    c.drop_database("db1")
    assert c.list_databases() == ["default"]
    with pytest.raises(DatabaseNotFound):
        c.use_database("db1")
    c.close()
    with pytest.raises(DatabaseNotFound) as e:
        MilvusClient(dirpath, device="cpu", db_name="db1")
    assert e.value.code == 800


def test_properties_are_enforced(dirpath):
    c = MilvusClient(dirpath, device="cpu")
    c.create_database("db1", properties={"database.max.collections": 1,
                                         "database.force.deny.writing": True})
    c.use_database("db1")
    c.create_collection("a", schema=basic_schema(), index_params=index_params())
    with pytest.raises(MilvusException, match="exceeded the limit number of collections"):
        c.create_collection("b", dimension=4)
    with pytest.raises(MilvusException, match="deny writing") as e:
        c.insert("a", basic_rows(3))
    assert e.value.code == 9
    with pytest.raises(MilvusException, match="deny writing"):
        c.delete("a", ids=[1])
    c.alter_database_properties("db1", {"database.force.deny.writing": False,
                                        "database.force.deny.reading": True})
    c.insert("a", basic_rows(3))
    with pytest.raises(MilvusException, match="deny reading"):
        c.query("a", "id >= 0")
    c.drop_database_properties("db1", ["database.force.deny.reading"])
    assert len(c.query("a", "id >= 0")) == 3
    c.close()


def test_reopen_keeps_databases_properties_and_loads(dirpath):
    c = MilvusClient(dirpath, device="cpu")
    c.create_database("db1", properties={"database.max.collections": 5})
    c.use_database("db1")
    _coll(c)
    c.flush("docs")
    c.close()
    c = MilvusClient(dirpath, device="cpu", db_name="db1")
    assert c.list_databases() == ["default", "db1"]
    assert c.describe_database("db1")["database.max.collections"] == "5"
    c.load_collection("docs")  # the restored load may still be running: wait for it
    assert c.get_collection_stats("docs")["row_count"] == 20
    assert c.in_database("default").list_collections() == []
    c.close()


def test_half_made_database_folder_is_removed_at_open(dirpath, monkeypatch):
    c = MilvusClient(dirpath, device="cpu")

    def refuse(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.catalog.write_atomic", refuse)
    with pytest.raises(MilvusException, match="was not created"):
        c.create_database("db1")
    monkeypatch.undo()
    assert c.list_databases() == ["default"]
    c.close()
    c = MilvusClient(dirpath, device="cpu")
    assert c.list_databases() == ["default"]
    root = c._dbs.default._dir.db_base
    assert not root.exists() or list(root.iterdir()) == []
    c.close()


def test_move_to_another_database(dirpath, monkeypatch):
    c = MilvusClient(dirpath, device="cpu")
    c.create_database("db1")
    _coll(c)
    c.flush("docs")
    c.insert("docs", basic_rows(5, start=50))  # unsealed rows travel in the WAL
    q = [basic_rows(1)[0]["vec"]]
    before = c.search("docs", q, limit=5)
    monkeypatch.setattr(shutil, "copytree", lambda *a, **k: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    with pytest.raises(MilvusException, match="was not moved"):
        c.rename_collection("docs", "moved", target_db="db1")
    monkeypatch.undo()
    assert c.list_collections() == ["docs"] and c.in_database("db1").list_collections() == []
    c.rename_collection("docs", "moved", target_db="db1")
    assert c.list_collections() == []
    other = c.in_database("db1")
    assert other.list_collections() == ["moved"]
    other.load_collection("moved")
    assert other.search("moved", q, limit=5) == before
    assert other.get_collection_stats("moved")["row_count"] == 25
    _coll(c, "x")
    c.create_alias("x", "ax")
    with pytest.raises(ParamError, match="has aliases"):
        c.rename_collection("x", "y", target_db="db1")
    c.drop_alias("ax")
    with pytest.raises(ParamError, match="duplicated new collection name"):
        c.rename_collection("x", "moved", target_db="db1")
    with pytest.raises(DatabaseNotFound):
        c.rename_collection("x", "y", target_db="nope")
    c.close()
    c = MilvusClient(dirpath, device="cpu", db_name="db1")
    c.load_collection("moved")
    assert np.allclose([h["distance"] for h in c.search("moved", q, limit=5)[0]],
                       [h["distance"] for h in before[0]])
    c.close()

"""Aliases through the embedded client: usable wherever a collection name is, persisted,
and refused with Milvus's codes where Milvus refuses them."""
from __future__ import annotations

import pytest

from engine import MilvusClient
from engine.errors import MilvusException

from ..conftest import basic_rows, basic_schema, index_params


def _code(fn) -> int:
    with pytest.raises(MilvusException) as e:
        fn()
    return e.value.code


def test_an_alias_works_wherever_a_collection_name_does(tmp_path):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("books_v1", schema=basic_schema(), index_params=index_params())
    c.create_alias("books_v1", "books")
    c.insert("books", basic_rows(10))
    assert c.query("books", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 10}]
    assert c.search("books", [basic_rows(1)[0]["vec"]], limit=1)[0][0]["id"] == 0
    assert c.has_collection("books") and c.list_collections() == ["books_v1"]
    assert c.describe_collection("books")["collection_name"] == "books_v1"
    assert c.describe_collection("books_v1")["aliases"] == ["books"]
    assert c.memory_info("books") == c.memory_info("books_v1")
    c.release_collection("books")
    assert c.get_load_state("books_v1")["state"].name == "NotLoad"
    c.load_collection("books")
    assert c.describe_alias("books") == {"alias": "books", "collection_name": "books_v1",
                                         "db_name": "default"}
    assert c.list_aliases("books_v1")["aliases"] == ["books"]
    # switch the alias to a new version: readers follow it
    c.create_collection("books_v2", schema=basic_schema(), index_params=index_params())
    c.insert("books_v2", basic_rows(3, start=100))
    c.alter_alias("books_v2", "books")
    assert c.query("books", "id >= 0", output_fields=["count(*)"]) == [{"count(*)": 3}]
    c.close()
    c = MilvusClient(str(tmp_path / "d"), device="cpu")  # persisted
    assert c.describe_alias("books")["collection_name"] == "books_v2"
    assert c.list_aliases()["aliases"] == ["books"]
    c.drop_alias("books")
    c.drop_alias("books")  # a missing alias: nothing to do, as Milvus
    assert _code(lambda: c.describe_alias("books")) == 1600
    assert _code(lambda: c.query("books", "id >= 0", limit=1)) == 100
    c.close()


def test_alias_refusals(cpu_client):
    c = cpu_client
    c.create_collection("a", schema=basic_schema(), index_params=index_params())
    c.create_collection("b", schema=basic_schema(), index_params=index_params())
    c.create_alias("a", "x")
    c.create_alias("a", "x")  # the same again: nothing to do
    assert _code(lambda: c.create_alias("b", "x")) == 1602  # taken by another collection
    assert _code(lambda: c.create_alias("a", "b")) == 1601  # names a collection
    assert _code(lambda: c.create_collection("x", dimension=4)) == 1601
    assert _code(lambda: c.create_alias("missing", "y")) == 100
    assert _code(lambda: c.alter_alias("a", "nope")) == 1600
    assert _code(lambda: c.create_alias("a", "1bad")) == 1100
    assert _code(lambda: c.drop_collection("x")) == 1100  # not through an alias
    with pytest.raises(MilvusException, match="associated aliases"):
        c.drop_collection("a")
    assert c.list_collections() == ["a", "b"]
    c.drop_alias("x")
    c.drop_collection("a")
    assert c.list_collections() == ["b"]

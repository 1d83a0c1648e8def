"""add_collection_field: a nullable (or defaulted) field added to a collection with rows,
sealed and growing, loaded or not; old rows read null or the default without a rewrite,
through load, filters, outputs, compaction and reopen."""
from __future__ import annotations

import pytest

from engine import DataType, MilvusClient
from engine.errors import ParamError

from ..conftest import basic_rows, basic_schema, index_params


def _ids(c, expr):
    return sorted(r["id"] for r in c.query("c", expr, output_fields=["id"], limit=1000))


@pytest.mark.parametrize("loaded", [True, False])
def test_old_rows_read_null_or_default(tmp_path, loaded):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.insert("c", basic_rows(10))
    c.flush("c")
    c.insert("c", basic_rows(5, start=10))  # growing when the field is added
    if not loaded:
        c.release_collection("c")
    seg_files = sorted(p.name for p in (tmp_path / "d").rglob("*.safetensors"))
    c.add_collection_field("c", "price", DataType.DOUBLE, nullable=True, default_value=2.5)
    c.add_collection_field("c", "tag", DataType.VARCHAR, max_length=8, nullable=True)
    c.add_collection_field("c", "n", DataType.INT32, nullable=True)
    # the sealed segment was not rewritten; the growing rows were sealed as they were
    assert set(seg_files) <= {p.name for p in (tmp_path / "d").rglob("*.safetensors")}
    c.insert("c", [{**r, "price": 9.0, "tag": "new", "n": 7} for r in basic_rows(2, start=20)])
    if not loaded:
        c.load_collection("c")
    assert _ids(c, "price == 2.5") == list(range(15))
    assert _ids(c, "tag is null") == list(range(15))
    assert _ids(c, "n is null") == list(range(15))
    assert _ids(c, "tag == 'new' and n == 7 and price > 3") == [20, 21]
    got = c.query("c", "id in [0, 20]", output_fields=["price", "tag", "n"])
    assert sorted(got, key=lambda r: r["id"]) == [
        {"id": 0, "price": 2.5, "tag": None, "n": None},
        {"id": 20, "price": 9.0, "tag": "new", "n": 7}]
    assert c.describe_collection("c")["fields"][-1]["name"] == "n"
    c.release_collection("c")
    c.compact("c")  # rewrites old segments with the column filled in
    c.close()
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.load_collection("c")
    assert _ids(c, "price == 2.5") == list(range(15))
    assert _ids(c, "n is not null") == [20, 21]
    c.close()


def test_refusals(cpu_client):
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    for kwargs, match in (({"nullable": False}, "must be nullable"),
                          ({"nullable": True, "is_primary": True}, "primary key"),):
        with pytest.raises(ParamError, match=match):
            c.add_collection_field("c", "x", DataType.INT64, **kwargs)
    with pytest.raises(ParamError, match="vector field"):
        c.add_collection_field("c", "v2", DataType.FLOAT_VECTOR, dim=4, nullable=True)
    with pytest.raises(ParamError, match="duplicated field name"):
        c.add_collection_field("c", "age", DataType.INT64, nullable=True)
    with pytest.raises(ParamError, match="default_value"):
        c.add_collection_field("c", "x", DataType.INT8, nullable=True, default_value=1000)
    assert [f["name"] for f in c.describe_collection("c")["fields"]] == [
        "id", "vec", "title", "score", "age"]


def test_partition_stats(cpu_client):
    c = cpu_client
    c.create_collection("c", schema=basic_schema(), index_params=index_params())
    c.create_partition("c", "p1")
    c.insert("c", basic_rows(6))
    c.insert("c", basic_rows(4, start=10), partition_name="p1")
    c.flush("c")
    c.insert("c", basic_rows(1, start=20), partition_name="p1")
    c.delete("c", ids=[10])
    assert c.get_partition_stats("c", "p1") == {"row_count": 4}
    assert c.get_partition_stats("c", "_default") == {"row_count": 6}
    with pytest.raises(Exception, match="partition not found"):
        c.get_partition_stats("c", "nope")

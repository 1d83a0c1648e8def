"""Filter syntax of Milvus's current grammar that is not in test_expr.py: ``exists`` on
JSON paths and dynamic keys, and list literals whose elements are lists
(``json_contains_all(x, [[1, 2], [3]])``)."""
from __future__ import annotations

import pytest

from engine import DataType, MilvusClient
from engine.errors import ParamError


@pytest.fixture
def coll(cpu_client):
    c = cpu_client
    s = c.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("j", DataType.JSON)
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("c", schema=s, index_params=p)
    c.insert("c", [{"id": 1, "v": [0, 0], "j": {"a": 1, "l": [[1, 2], [3]]}, "color": "red"},
                   {"id": 2, "v": [0, 0], "j": {"b": None, "l": [[1]]}},
                   {"id": 3, "v": [0, 0], "j": {"a": "x", "l": [[3], [1, 2], [4]]}}])
    return c


def _ids(c: MilvusClient, expr: str) -> list[int]:
    return sorted(r["id"] for r in c.query("c", expr))


def test_exists(coll):
    assert _ids(coll, 'exists j["a"]') == [1, 3]
    assert _ids(coll, 'EXISTS j["a"] and j["a"] == 1') == [1]
    assert _ids(coll, 'not exists j["a"]') == [2]
    assert _ids(coll, "exists color") == [1]  # a dynamic key


def test_lists_of_lists(coll):
    assert _ids(coll, 'json_contains_all(j["l"], [[1, 2], [3]])') == [1, 3]
    assert _ids(coll, 'json_contains_any(j["l"], [[1], [4]])') == [2, 3]
    assert _ids(coll, 'json_contains(j["l"], [1, 2])') == [1, 3]
    with pytest.raises(ParamError):
        coll.query("c", "id in [[1, 2]]")

"""Scalar and JSON-path indexes (engine/index/scalar.py): what each field type takes, that
filters answer the same with and without them (a property test), that the index is what
answers, and that the index is resident, listed and persisted."""
from __future__ import annotations

import ast
import math
import operator
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DataType, MilvusClient
from engine.errors import FieldNotFound, MilvusException, ParamError
from engine.index import scalar

N = 600


def _schema(c: MilvusClient):
    s = c.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("i8", DataType.INT8, nullable=True)
    s.add_field("i64", DataType.INT64)
    s.add_field("f", DataType.FLOAT, nullable=True)
    s.add_field("name", DataType.VARCHAR, max_length=16, nullable=True)
    s.add_field("flag", DataType.BOOL)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("meta", DataType.JSON)
    return s


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = int(rng.integers(-5, 12))
        out.append({
            "id": i, "v": rng.random(2).tolist(),
            "i8": None if i % 11 == 0 else int(rng.integers(-128, 128)),
            "i64": int(rng.integers(-(2 ** 40), 2 ** 40)) if i % 5 else 2 ** 53 + i,
            "f": None if i % 13 == 0 else (float("nan") if i % 17 == 0 else float(rng.normal())),
            "name": None if i % 9 == 0 else f"n{int(rng.integers(0, 30))}",
            "flag": bool(i % 2), "tags": [int(rng.integers(0, 5))],
            "meta": {"a": {"b": b if i % 4 else f"s{b}"}, "l": [b, b + 1]},
            "color": ["red", "blue", "green"][i % 3]})
    return out


ROWS = _rows(N)


def _index_all(c: MilvusClient, name: str = "c") -> None:
    p = c.prepare_index_params()
    p.add_index("i8", "STL_SORT")
    p.add_index("i64", "INVERTED")
    p.add_index("f", "AUTOINDEX")
    p.add_index("name", "TRIE")
    p.add_index("flag", "BITMAP")
    p.add_index("tags", "INVERTED")
    p.add_index("meta", "INVERTED", params={"json_path": "meta['a']['b']",
                                             "json_cast_type": "double"})
    p.add_index("meta", "INVERTED", index_name="meta_l",
                params={"json_path": 'meta["l"]', "json_cast_type": "ARRAY_DOUBLE"})
    p.add_index("color", "AUTOINDEX", params={"json_path": "color", "json_cast_type": "varchar"})
    c.create_index(name, p)


@pytest.fixture
def pair(tmp_path):
    """Two collections with the same rows, sealed and growing: ``i`` indexed, ``p`` not."""
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    rows = ROWS
    for name in ("i", "p"):
        p = c.prepare_index_params()
        p.add_index("v", "FLAT", metric_type="L2")
        c.create_collection(name, schema=_schema(c), index_params=p)
        c.insert(name, rows[: N - 50])
        c.flush(name)
        c.insert(name, rows[N - 50:])  # stays growing: never indexed, scanned
    _index_all(c, "i")
    for name in ("i", "p"):
        c.load_collection(name)
    return c


def _ids(c: MilvusClient, name: str, expr: str) -> list[int]:
    return sorted(r["id"] for r in c.query(name, expr, output_fields=["id"], limit=N))


_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
_nums = st.one_of(st.integers(-130, 130), st.integers(-300, 300), st.integers(-(2 ** 63), 2 ** 63),
                  st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.sampled_from([2 ** 53 + 5, 2 ** 53 + 5.0, 0.5, -0.5, 127.5, -128.5]))
_strs = st.sampled_from(["n1", "n10", "n29", "n3", "", "z", "n"])


def _num(x) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return repr(x)


@st.composite
def _exprs(draw) -> str:
    kind = draw(st.sampled_from(["num", "num_rev", "in", "str", "like", "json", "dyn",
                                 "and", "not"]))
    field = draw(st.sampled_from(["i8", "i64", "f"]))
    x = _num(draw(_nums)) or "1"
    if kind == "num":
        return f"{field} {draw(_ops)} {x}"
    if kind == "num_rev":
        return f"{x} {draw(_ops)} {field}"
    if kind == "in":
        vals = ", ".join(_num(draw(_nums)) or "0" for _ in range(draw(st.integers(0, 4))))
        return f"{field} {draw(st.sampled_from(['in', 'not in']))} [{vals}]"
    if kind == "str":
        return f"name {draw(_ops)} '{draw(_strs)}'"
    if kind == "like":
        return f"name like '{draw(st.sampled_from(['n1%', '%9', 'n_', '%']))}'"
    if kind == "json":
        lit = draw(st.one_of(st.integers(-6, 12).map(str), st.sampled_from(["'s3'", "true"])))
        return f"meta['a']['b'] {draw(_ops)} {lit}"
    if kind == "dyn":
        return f"color {draw(st.sampled_from(['==', '!=', '>']))} '{draw(st.sampled_from(['red', 'blue', 'x']))}'"
    if kind == "and":
        return f"i8 > {draw(st.integers(-130, 130))} and i8 < {draw(st.integers(-130, 130))}"
    return f"not ({field} {draw(_ops)} {x})"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expr=_exprs())
def test_indexed_filters_answer_as_scans(pair, expr, monkeypatch):
    monkeypatch.setattr(scalar, "SCATTER_MAX", 1.0)  # the index answers every match width
    def answer(name: str):
        try:
            return _ids(pair, name, expr)
        except ParamError as e:  # a filter refused is refused the same way
            return e.message

    got = answer("i")
    assert got == answer("p"), expr
    m = re.fullmatch(r"(i8|i64) ([<>=!]+) (\S+)", expr)
    if m:  # integer columns against a number: Python's exact comparison is the oracle
        field, op, x = m.group(1), m.group(2), ast.literal_eval(m.group(3))
        cmp = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}[op]
        assert got == [r["id"] for r in ROWS if r[field] is not None and cmp(r[field], x)], expr


def test_integer_comparisons_are_exact(pair):
    """Without an index too: an INT8 column against 300, an INT64 column against a float
    past 2**24 (torch alone wraps the first and rounds the second)."""
    rows = _rows(N)
    for name in ("i", "p"):
        assert _ids(pair, name, "i8 < 300") == sorted(r["id"] for r in rows
                                                      if r["i8"] is not None)
        assert _ids(pair, name, "i8 > 300") == []
        big = 2 ** 53 + 5
        want = sorted(r["id"] for r in rows if r["i64"] > float(f"{big}.5"))
        assert _ids(pair, name, f"i64 > {big}.5") == want
        assert _ids(pair, name, "i8 in [1, 300, 2.5]") == sorted(
            r["id"] for r in rows if r["i8"] == 1)


def test_the_index_answers(pair, monkeypatch):
    calls = []
    for cls, method in ((scalar.SortedIndex, "compare"), (scalar.DictionaryIndex, "gather")):
        real = getattr(cls, method)
        monkeypatch.setattr(cls, method, lambda self, *a, _r=real, _m=method: (
            calls.append(_m), _r(self, *a))[1])
    _ids(pair, "i", "i8 == 5")
    _ids(pair, "i", "name like 'n1%'")
    assert calls == ["compare", "gather"]
    calls.clear()
    _ids(pair, "p", "i8 == 5")
    assert calls == []


def test_json_path_index_is_resident_and_skips_the_json_pass(pair):
    parts = pair.memory_info("i")["parts"]
    for name in ("index/i8", "index/i64", "index/f", "index/name", "index/meta/a/b",
                 "index/meta_l", "index/color"):
        assert parts[name] > 0, name
    assert "index/flag" not in parts and "index/tags" not in parts  # hold nothing
    assert parts["index/meta/a/b"] == (N - 50) * (8 + 1 + 1)  # num, is_num, present
    pair.flush("i")  # the growing rows seal (and are indexed): no segment is scanned
    _ids(pair, "i", "meta['a']['b'] > 3 and color == 'red'")
    assert "$cache" not in pair.memory_info("i")["parts"]  # answered by the indexes alone
    _ids(pair, "i", "meta['a']['b'] == 's3'")  # a string: not what a DOUBLE index holds
    assert pair.memory_info("i")["parts"]["$cache"] > 0


def test_list_describe_drop_and_reopen(pair, tmp_path):
    names = pair.list_indexes("i")
    assert names == ["v", "i8", "i64", "f", "name", "flag", "tags", "meta/a/b", "meta_l",
                     "color"]
    assert pair.list_indexes("i", field_name="meta") == ["meta/a/b", "meta_l"]
    d = pair.describe_index("i", "meta/a/b")
    assert (d["index_type"], d["json_path"], d["json_cast_type"]) == (
        "INVERTED", "meta['a']['b']", "DOUBLE")
    with pytest.raises(MilvusException, match="release"):
        pair.drop_index("i", "meta/a/b")
    pair.close()
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    assert c.list_indexes("i") == names
    c.load_collection("i")
    assert c.memory_info("i")["parts"]["index/meta/a/b"] > 0
    c.release_collection("i")
    c.drop_index("i", "meta/a/b")
    c.load_collection("i")
    assert "index/meta/a/b" not in c.memory_info("i")["parts"]
    assert _ids(c, "i", "meta['a']['b'] > 3")


def test_created_while_loaded_and_sealed_while_loaded(pair):
    p = pair.prepare_index_params()
    p.add_index("i8", "STL_SORT")
    pair.create_index("p", p)  # loaded: built on the resident segments at once
    assert pair.memory_info("p")["parts"]["index/i8"] > 0
    before = pair.memory_info("p")["parts"]["index/i8"]
    pair.flush("p")  # the growing rows seal while loaded: their segment is indexed too
    assert pair.memory_info("p")["parts"]["index/i8"] > before
    assert _ids(pair, "p", "i8 >= 0") == _ids(pair, "i", "i8 >= 0")


@pytest.mark.parametrize("field,itype,params,err,match", [
    ("i64", "TRIE", {}, ParamError, "TRIE index is not supported on INT64"),
    ("f", "BITMAP", {}, ParamError, "BITMAP index is not supported on FLOAT"),
    ("id", "BITMAP", {}, ParamError, "primary key"),
    ("meta", "INVERTED", {}, ParamError, "json_cast_type"),
    ("meta", "INVERTED", {"json_path": "meta['a']", "json_cast_type": "int"}, ParamError,
     "json_cast_type int is not supported"),
    ("meta", "INVERTED", {"json_path": "other['a']", "json_cast_type": "double"}, ParamError,
     "must start at field meta"),
    ("meta", "INVERTED", {"json_path": "meta[", "json_cast_type": "double"}, ParamError,
     "not a path"),
    ("meta", "INVERTED", {"json_path": "meta['a']", "json_cast_type": "double",
                          "json_cast_function": "STRING_TO_DOUBLE"}, ParamError,
     "json_cast_function"),
    ("meta", "STL_SORT", {"json_path": "meta['a']", "json_cast_type": "double"}, ParamError,
     "STL_SORT index is not supported on JSON"),
    ("i8", "INVERTED", {"json_path": "i8", "json_cast_type": "double"}, ParamError,
     "apply to JSON fields"),
    ("nope", "INVERTED", {}, FieldNotFound, "nope"),
    ("i8", "HASH", {}, ParamError, "not supported on scalar field"),
])
def test_refusals(cpu_client, field, itype, params, err, match):
    c = cpu_client
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("c", schema=_schema(c), index_params=p)
    p = c.prepare_index_params()
    p.add_index(field, itype, params=params)
    with pytest.raises(err, match=match):
        c.create_index("c", p)
    assert c.list_indexes("c") == ["v"]


def test_one_index_per_target(cpu_client):
    c = cpu_client
    p = c.prepare_index_params()
    p.add_index("v", "FLAT", metric_type="L2")
    p.add_index("meta", "INVERTED", params={"json_path": "meta['a']", "json_cast_type": "double"})
    c.create_collection("c", schema=_schema(c), index_params=p)
    p = c.prepare_index_params()  # the same path written otherwise, and the same index
    p.add_index("meta", "INVERTED", params={"json_path": 'meta["a"]', "json_cast_type": "DOUBLE"})
    with pytest.raises(MilvusException, match="at most one distinct index"):
        c.create_index("c", p)
    p = c.prepare_index_params()  # another cast type of the same path: a second index
    p.add_index("meta", "INVERTED", index_name="a_str",
                params={"json_path": "meta['a']", "json_cast_type": "varchar"})
    c.create_index("c", p)
    assert c.list_indexes("c", field_name="meta") == ["meta/a", "a_str"]
    with pytest.raises(ParamError, match="index_name="):
        c.prepare_index_params().add_index("meta", "INVERTED", params={
            "json_path": "meta['a b']", "json_cast_type": "bool"})

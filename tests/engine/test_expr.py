"""Filter expressions against a plain-Python oracle over the same rows."""
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import DataType, MilvusClient
from engine.errors import MilvusException, ParamError
from engine.expr import compile_filter

from ..conftest import index_params

N = 120


def _meta(i):
    if i % 11 == 0:
        return None
    if i % 10 == 0:
        return [1, 2, i]  # not an object: paths into it are absent
    out = {"a": {"b": i % 6, "s": "s" + str(i % 3)}, "list": [i % 4, "t" + str(i % 2)],
           "f": (i % 8) / 2, "flag": i % 2 == 0}
    if i % 7 == 0:
        del out["f"]
    return out


def _dynamic(i):
    out = {}
    if i % 5:
        out["color"] = ["red", "green", "blue"][i % 3]
    if i % 3:
        out["rank"] = i % 13
    out["mixed"] = [i % 3, "three", True, None][i % 4]
    return out


def _get(r, *path):
    v = r
    for k in path:
        if isinstance(k, str):
            v = v.get(k) if isinstance(v, dict) else None
        else:
            v = v[k] if isinstance(v, list) and 0 <= k < len(v) else None
        if v is None:
            return None
    return v


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rows():
    out = []
    for i in range(N):
        out.append({"id": i, "vec": [float(i % 5), 1.0], "age": (i * 7) % 60 - 10,
                    "score": ((i * 13) % 40) / 4.0, "title": ["apple", "banana", "cherry",
                                                              "a_b", "A%", "it's"][i % 6] + str(i % 4),
                    "flag": i % 3 == 0, "n": None if i % 4 == 0 else i % 9,
                    "meta": _meta(i), "tags": [j % 7 for j in range(i % 5)],
                    "words": [["x", "y", "z"][j % 3] for j in range(i % 4)],
                    **_dynamic(i)})
    return out


ROWS = _rows()
DYN_KEYS = ("color", "rank", "mixed")


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    c = MilvusClient(str(tmp_path_factory.mktemp("expr") / "d"), device="cpu")
    s = MilvusClient.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("age", DataType.INT32)
    s.add_field("score", DataType.DOUBLE)
    s.add_field("title", DataType.VARCHAR, max_length=20)
    s.add_field("flag", DataType.BOOL)
    s.add_field("n", DataType.INT16, nullable=True)
    s.add_field("meta", DataType.JSON, nullable=True)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    s.add_field("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8,
                max_length=4)
    c.create_collection("e", schema=s, index_params=index_params("vec"))
    c.insert("e", ROWS[:70])
    c.flush("e")
    c.insert("e", ROWS[70:])  # sealed + growing
    yield c
    c.close()


def _ids(c, expr, **params):
    kw = {"filter_params": params} if params else {}
    return sorted(r["id"] for r in c.query("e", expr, output_fields=["id"], **kw))


def _oracle(fn):
    return sorted(r["id"] for r in ROWS if fn(r) is True)


def _like(pattern):
    rx = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(rx + r"\Z", re.S)


CASES = [
    ("age > 10", lambda r: r["age"] > 10),
    ("age >= -3 && age < 4", lambda r: -3 <= r["age"] < 4),
    ("10 < age <= 20", lambda r: 10 < r["age"] <= 20),
    ("0 <= score < 2.5 and not flag", lambda r: 0 <= r["score"] < 2.5 and not r["flag"]),
    ("age in [1, 4, -10]", lambda r: r["age"] in (1, 4, -10)),
    ("age not in [1, 4, -10]", lambda r: r["age"] not in (1, 4, -10)),
    ("title in ['apple0', \"banana1\"]", lambda r: r["title"] in ("apple0", "banana1")),
    ("title == 'it\\'s3'", lambda r: r["title"] == "it's3"),
    ("title like 'a%'", lambda r: bool(_like("a%").match(r["title"]))),
    ("title like 'a\\_b%'", lambda r: r["title"].startswith("a_b")),
    ("title like '_pple_'", lambda r: bool(_like("_pple_").match(r["title"]))),
    ("title > 'b' or flag == true", lambda r: r["title"] > "b" or r["flag"]),
    ("flag", lambda r: r["flag"]),
    ("!flag || age % 7 == 3", lambda r: (not r["flag"]) or r["age"] % 7 == 3),
    ("age * 2 + 1 > score ** 2", lambda r: r["age"] * 2 + 1 > r["score"] ** 2),
    ("age / 4 >= 2.5", lambda r: r["age"] / 4 >= 2.5),
    ("-age > 5", lambda r: -r["age"] > 5),
    ("n > 3", lambda r: None if r["n"] is None else r["n"] > 3),
    ("not (n > 3)", lambda r: None if r["n"] is None else not r["n"] > 3),
    ("n is null", lambda r: r["n"] is None),
    ("n is not null and n < 2", lambda r: r["n"] is not None and r["n"] < 2),
    ("n > 3 or age > 40", lambda r: True if r["age"] > 40 else (
        None if r["n"] is None else r["n"] > 3)),
    ("(age > 0 and (score < 3 or title like '%2')) or id in [5, 6]",
     lambda r: (r["age"] > 0 and (r["score"] < 3 or r["title"].endswith("2"))) or r["id"] in (5, 6)),
    ("1 < 2", lambda r: True),
    ("ID == 3".lower(), lambda r: r["id"] == 3),
    ("age > 10 AND age < 20 OR NOT age != 0", lambda r: 10 < r["age"] < 20 or r["age"] == 0),
]


CASES += [
    # JSON paths
    ('meta["a"]["b"] == 3', lambda r: _get(r["meta"], "a", "b") == 3 if _num(
        _get(r["meta"], "a", "b")) else None),
    ('meta["a"]["b"] >= 2 and meta["f"] < 2.5', lambda r: _and3(
        None if not _num(_get(r["meta"], "a", "b")) else _get(r["meta"], "a", "b") >= 2,
        None if not _num(_get(r["meta"], "f")) else _get(r["meta"], "f") < 2.5)),
    ('meta["a"]["s"] in ["s1", "s2"]', lambda r: _get(r["meta"], "a", "s") in ("s1", "s2")
     if isinstance(_get(r["meta"], "a", "s"), str) else None),
    ('meta["list"][0] == 2', lambda r: _get(r["meta"], "list", 0) == 2 if _num(
        _get(r["meta"], "list", 0)) else None),
    ('meta["list"][1] like "t1%"', lambda r: _get(r["meta"], "list", 1) == "t1" if isinstance(
        _get(r["meta"], "list", 1), str) else None),
    ('meta["flag"] == true', lambda r: _get(r["meta"], "flag") is True),
    ('meta["f"] is null', lambda r: _get(r["meta"], "f") is None),
    ('meta["a"]["b"] % 4 == 1', lambda r: _get(r["meta"], "a", "b") % 4 == 1 if _num(
        _get(r["meta"], "a", "b")) else None),
    ('json_contains(meta["list"], "t0")', lambda r: "t0" in (_get(r["meta"], "list") or [])),
    ('json_contains_any(meta["list"], [3, "t1"])', lambda r: bool(
        {3, "t1"} & set(_get(r["meta"], "list") or []))),
    ('json_contains_all(meta["list"], [1, "t1"])', lambda r: {1, "t1"} <= set(
        _get(r["meta"], "list") or [])),
    ('meta[0] == 1', lambda r: isinstance(r["meta"], list) and r["meta"][0] == 1),
    # dynamic keys
    ("color == 'red'", lambda r: r.get("color") == "red"),
    ("color in ['red', 'blue'] and rank > 5", lambda r: _and3(
        r.get("color") in ("red", "blue") if "color" in r else None,
        r["rank"] > 5 if "rank" in r else None)),
    ('$meta["rank"] <= 2', lambda r: r["rank"] <= 2 if "rank" in r else None),
    ("rank is null", lambda r: "rank" not in r),
    ("not (rank > 5)", lambda r: (not r["rank"] > 5) if "rank" in r else None),
    ("mixed == 2", lambda r: _num(r["mixed"]) and r["mixed"] == 2),
    ("mixed == 'three'", lambda r: r["mixed"] == "three"),
    ("mixed == true", lambda r: r["mixed"] is True),
    ("mixed in [1, 'three']", lambda r: (r["mixed"] in (1, "three") and not isinstance(
        r["mixed"], bool)) if r["mixed"] is not None else None),
    ("rank + age > 20", lambda r: r["rank"] + r["age"] > 20 if "rank" in r else None),
    # arrays
    ("tags[0] == 0", lambda r: r["tags"][0] == 0 if r["tags"] else None),
    ("tags[2] > 1", lambda r: r["tags"][2] > 1 if len(r["tags"]) > 2 else None),
    ("words[1] == 'y'", lambda r: r["words"][1] == "y" if len(r["words"]) > 1 else None),
    ("array_contains(tags, 3)", lambda r: 3 in r["tags"]),
    ("ARRAY_CONTAINS_ALL(tags, [1, 2])", lambda r: {1, 2} <= set(r["tags"])),
    ("array_contains_any(words, ['z', 'q'])", lambda r: bool({"z", "q"} & set(r["words"]))),
    ("array_length(tags) >= 3", lambda r: len(r["tags"]) >= 3),
    ("array_length(words) == 0 or not array_contains(tags, 0)",
     lambda r: len(r["words"]) == 0 or 0 not in r["tags"]),
    ("array_length(meta[\"list\"]) == 2", lambda r: isinstance(_get(r["meta"], "list"), list)),
]


def _and3(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


@pytest.mark.parametrize("expr, fn", CASES, ids=[c[0] for c in CASES])
def test_construct_matches_oracle(coll, expr, fn):
    assert _ids(coll, expr) == _oracle(fn)


def test_filtered_search_never_returns_filtered_or_deleted(coll):
    hits = coll.search("e", [[1.0, 1.0]], limit=50, filter="age > 30")
    assert hits[0] and all(ROWS[h["id"]]["age"] > 30 for h in hits[0])
    assert len(hits[0]) == min(50, len(_oracle(lambda r: r["age"] > 30)))


@pytest.mark.parametrize("expr, fragment", [
    ("age > 'x'", "cannot compare number with string"),
    ("title < 3", "cannot compare string with number"),
    ("title[0] == 'a'", "has no [...] path"),
    ("tags['a'] == 1", "one integer index"),
    ("array_contains(tags, 'x')", "does not match the array's number"),
    ("array_contains(age, 1)", "needs an ARRAY field or a JSON value"),
    ("array_contains_all(tags, 1)", "needs a list"),
    ("nosuchfn(age)", "unknown function"),
    ("tags == 1", "does not apply to arrays"),
    ("age > {missing}", "has no value in filter_params"),
    ("flag > true", "does not apply to bools"),
    ("title + 1 > 2", "arithmetic applies to numbers"),
    ("age like 'a%'", "like applies to strings"),
    ("age", "must be a boolean"),
    ("age in ['a']", "does not match"),
    ("vec > 1", "vector field"),
    ("age >> 2", "cannot parse"),
    ("(age > 1", "cannot parse"),
])
def test_type_errors_are_1100_with_caret(coll, expr, fragment):
    with pytest.raises(MilvusException) as e:
        coll.query("e", expr)
    assert e.value.code == 1100 and fragment in e.value.message
    assert expr in e.value.message and "^" in e.value.message


def test_caret_points_at_offending_operand(coll):
    with pytest.raises(ParamError) as e:
        coll.query("e", "age > 1 and title == 5")
    lines = e.value.message.splitlines()
    text_line = next(l for l in lines if "age > 1 and title == 5" in l and l.startswith("  "))
    caret_line = lines[lines.index(text_line) + 1]
    assert caret_line.index("^") == text_line.index("5")


# -- property tests ------------------------------------------------------------------------
_NUM_FIELDS = ["age", "score"]


@st.composite
def _comparison(draw):
    kind = draw(st.sampled_from(["num", "str", "in", "like", "bool", "chain", "arith", "null",
                                 "json", "dyn", "arr"]))
    ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    if kind == "num":
        f = draw(st.sampled_from(_NUM_FIELDS + ["n"]))
        op = draw(st.sampled_from(list(ops)))
        v = draw(st.integers(-12, 60) | st.floats(-12, 60, allow_nan=False).map(lambda x: round(x, 2)))
        return f"{f} {op} {v!r}", lambda r: None if r[f] is None else ops[op](r[f], v)
    if kind == "str":
        op = draw(st.sampled_from(list(ops)))
        v = draw(st.sampled_from(["apple0", "banana", "c", "", "it's1", "zz"]))
        return f"title {op} {v!r}".replace("\"it's1\"", "'it\\'s1'"), lambda r: ops[op](r["title"], v)
    if kind == "in":
        vals = draw(st.lists(st.integers(-10, 50), max_size=5))
        neg = draw(st.booleans())
        text = f"age {'not in' if neg else 'in'} {vals}"
        return text, lambda r: (r["age"] in vals) != neg
    if kind == "like":
        p = draw(st.sampled_from(["a%", "%1", "_a%", "%an%", "cherry_", "%"]))
        rx = _like(p)
        return f"title like '{p}'", lambda r: bool(rx.match(r["title"]))
    if kind == "bool":
        v = draw(st.booleans())
        return f"flag == {str(v).lower()}", lambda r: r["flag"] == v
    if kind == "chain":
        lo, hi = sorted(draw(st.lists(st.integers(-12, 60), min_size=2, max_size=2)))
        return f"{lo} <= age < {hi}", lambda r: lo <= r["age"] < hi
    if kind == "arith":
        m = draw(st.integers(2, 7))
        k = draw(st.integers(0, m - 1))
        return f"age % {m} == {k}", lambda r: math.fmod(r["age"], m) % m == k
    if kind == "json":
        op = draw(st.sampled_from(list(ops)))
        path = draw(st.sampled_from([("a", "b"), ("f",), ("list", 0)]))
        v = draw(st.integers(-1, 6))
        text = "meta" + "".join(f'["{k}"]' if isinstance(k, str) else f"[{k}]" for k in path)

        def fn(r, path=path, op=op, v=v):
            x = _get(r["meta"], *path)
            return ops[op](x, v) if _num(x) else None
        return f"{text} {op} {v}", fn
    if kind == "dyn":
        if draw(st.booleans()):
            op = draw(st.sampled_from(list(ops)))
            v = draw(st.integers(-1, 14))
            return f"rank {op} {v}", lambda r: ops[op](r["rank"], v) if "rank" in r else None
        v = draw(st.sampled_from(["red", "green", "nope"]))
        return f"color == '{v}'", lambda r: r["color"] == v if "color" in r else None
    if kind == "arr":
        which = draw(st.sampled_from(["contains", "length", "elem"]))
        v = draw(st.integers(0, 6))
        if which == "contains":
            return f"array_contains(tags, {v})", lambda r: v in r["tags"]
        op = draw(st.sampled_from(list(ops)))
        if which == "length":
            return f"array_length(tags) {op} {v % 5}", lambda r: ops[op](len(r["tags"]), v % 5)
        return f"tags[1] {op} {v}", lambda r: ops[op](r["tags"][1], v) if len(r["tags"]) > 1 \
            else None
    neg = draw(st.booleans())
    return f"n is {'not ' if neg else ''}null", lambda r: (r["n"] is None) != neg


def _or3(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


_exprs = st.recursive(
    _comparison(),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: (f"({p[0][0]}) and ({p[1][0]})",
                                               lambda r, p=p: _and3(p[0][1](r), p[1][1](r)))),
        st.tuples(inner, inner).map(lambda p: (f"({p[0][0]}) || ({p[1][0]})",
                                               lambda r, p=p: _or3(p[0][1](r), p[1][1](r)))),
        inner.map(lambda p: (f"not ({p[0]})",
                             lambda r, p=p: None if p[1](r) is None else not p[1](r))),
    ),
    max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_exprs)
def test_generated_expressions_agree_with_oracle(coll, case):
    text, fn = case
    assert _ids(coll, text) == _oracle(fn), text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_only_ever_raise_1100(raw):
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("age", DataType.INT32)
    text = raw.decode("utf-8", errors="replace")
    try:
        compile_filter(text, s)
    except ParamError as e:
        assert e.code == 1100


def test_templates_fill_from_filter_params(coll):
    assert _ids(coll, "age > {lo} and title in {names}", lo=20, names=["apple0", "cherry2"]) == \
        _oracle(lambda r: r["age"] > 20 and r["title"] in ("apple0", "cherry2"))
    assert _ids(coll, "color == {col} or id in [{a}, 7]", col="blue", a=3) == \
        _oracle(lambda r: r.get("color") == "blue" or r["id"] in (3, 7))


def test_milvus_lite_rejects_these_but_they_work_here(coll):
    assert _ids(coll, "5 < age <= 15") == _oracle(lambda r: 5 < r["age"] <= 15)
    assert _ids(coll, "age % 3 == 0") == _oracle(lambda r: r["age"] % 3 == 0)
    assert _ids(coll, 'meta["a"]["b"] in [1, 2]') == _oracle(
        lambda r: _get(r["meta"], "a", "b") in (1, 2))


def test_json_path_cache_is_counted_and_extends_with_growing_rows(coll):
    before = coll.memory_info("e")["parts"].get("$cache", 0)
    _ids(coll, "never_seen_key >= 0")
    cached = coll.memory_info("e")["parts"].get("$cache", 0)
    assert cached > before
    extra = {**ROWS[0], "id": 10_000, "rank": 99}
    coll.insert("e", [extra])
    assert 10_000 in _ids(coll, "rank == 99")
    coll.delete("e", ids=[10_000])
    assert 10_000 not in _ids(coll, "rank == 99")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(list("0123456789 ()[]{}<>=!&|+-*/%.'\"_,") +
                                ["age", "title", "meta", "rank", "and", "or", "not", "in",
                                 "like", " ", "is null", "tags", "**", "n", "flag"]),
                max_size=14).map("".join))
def test_random_filters_evaluate_or_raise_1100(coll, text):
    try:
        coll.query("e", text or "x", output_fields=["count(*)"])
    except MilvusException as e:
        assert e.code == 1100, (text, e)


def test_division_by_zero_is_1100(coll):
    for expr in ("age % 0 == 1", "age / 0 > 1", "1 / 0 > 1", "2 ** 100000 > 1"):
        try:
            coll.query("e", expr, limit=1)
        except MilvusException as e:
            assert e.code == 1100


def test_small_int_arithmetic_is_done_in_int64_and_division_by_zero_is_refused(tmp_path):
    """INT8/INT16/INT32 columns are widened before arithmetic, as Milvus does: 127 + 1 is
    128 (it wrapped to -128 and dropped out of `> 0`); `/ 0` and `% 0` are 1100."""
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    for name, t in (("i8", DataType.INT8), ("i16", DataType.INT16), ("i32", DataType.INT32),
                    ("f32", DataType.FLOAT)):
        s.add_field(name, t)
    c.create_collection("a", schema=s, index_params=index_params())
    values = list(range(-128, 128))
    c.insert("a", [{"id": i, "vec": [0.0, 1.0], "i8": v, "i16": v * 256 + (255 if v == 127
                                                                           else 0),
                    "i32": v * 2 ** 24 + (2 ** 24 - 1 if v == 127 else 0),
                    "f32": float(v) * 1e36} for i, v in enumerate(values)])

    def count(expr):
        return c.query("a", expr, output_fields=["count(*)"])[0]["count(*)"]

    assert count("i8 + 1 > 0") == sum(v + 1 > 0 for v in values) == 128
    assert count("i8 * 2 > 200") == sum(v * 2 > 200 for v in values)
    assert count("i16 + 1 > 32767") == 1
    assert count("i32 + 1 > 2147483647") == 1
    assert count("f32 * 10 > 1e38") == sum(v * 1e37 > 1e38 for v in values)  # no float32 inf
    for expr in ("i8 / 0 > 1", "i8 % 0 == 0"):
        with pytest.raises(ParamError, match="division by zero"):
            count(expr)
    c.close()

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


def _rows():
    out = []
    for i in range(N):
        out.append({"id": i, "vec": [float(i % 5), 1.0], "age": (i * 7) % 60 - 10,
                    "score": ((i * 13) % 40) / 4.0, "title": ["apple", "banana", "cherry",
                                                              "a_b", "A%", "it's"][i % 6] + str(i % 4),
                    "flag": i % 3 == 0, "n": None if i % 4 == 0 else i % 9})
    return out


ROWS = _rows()


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
    c.create_collection("e", schema=s, index_params=index_params("vec"))
    c.insert("e", ROWS[:70])
    c.flush("e")
    c.insert("e", ROWS[70:])  # sealed + growing
    yield c
    c.close()


def _ids(c, expr):
    return sorted(r["id"] for r in c.query("e", expr, output_fields=["id"]))


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
    ("nope > 1", "dynamic key"),
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
    kind = draw(st.sampled_from(["num", "str", "in", "like", "bool", "chain", "arith", "null"]))
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
    neg = draw(st.booleans())
    return f"n is {'not ' if neg else ''}null", lambda r: (r["n"] is None) != neg


def _and3(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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

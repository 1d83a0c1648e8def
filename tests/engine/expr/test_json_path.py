"""The Arrow (C++) and the Python extraction of a JSON path agree."""
import json

import pyarrow as pa
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.expr import json_path

_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(
    -1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)) | st.text(max_size=5)


def _values(kind):
    base = {"int": st.integers(-50, 50), "float": st.floats(-5, 5, allow_nan=False),
            "str": st.text(max_size=4), "bool": st.booleans(),
            "ilist": st.lists(st.integers(-3, 3), max_size=3),
            "any": _scalars | st.lists(_scalars, max_size=3)}[kind]
    return st.none() | base


@st.composite
def columns(draw):
    kind = draw(st.sampled_from(["int", "float", "str", "bool", "ilist", "any"]))
    n = draw(st.integers(1, 25))
    rows = []
    for _ in range(n):
        shape = draw(st.sampled_from(["obj", "missing", "null_row", "nested"]))
        if shape == "null_row":
            rows.append(None)
        elif shape == "missing":
            rows.append(json.dumps({"other": 1}))
        elif shape == "nested":
            rows.append(json.dumps({"a": {"b": draw(_values(kind))}}))
        else:
            rows.append(json.dumps({"a": draw(_values(kind))}))
    return pa.array(rows, type=pa.string())


def _same(a: json_path.JsonValues, b: json_path.JsonValues) -> None:
    for name in ("is_num", "is_bool", "present"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.num[a.is_num], b.num[b.is_num])
    assert torch.equal(a.bool_[a.is_bool], b.bool_[b.is_bool])
    assert a.str_.to_pylist() == b.str_.to_pylist()
    assert a.lists.to_pylist() == b.lists.to_pylist()


@settings(max_examples=200, deadline=None)
@given(columns(), st.sampled_from([("a",), ("a", "b"), ("a", 0), ("zz",), ()]))
@example(pa.array(['{"a": {"b": [false, null]}}']), ("a", "b"))  # null element -> "null"
@example(pa.array(['{"a": [1, null]}', None, '{"a": [3]}']), ("a",))
def test_arrow_and_python_extraction_agree(col, path):
    fast = json_path._extract_arrow(col, path, torch.device("cpu"))
    slow = json_path._extract_python(col, path, torch.device("cpu"))
    if fast is not None:
        _same(fast, slow)


def test_fast_path_is_taken_for_homogeneous_values():
    col = pa.array([json.dumps({"a": i, "t": [i, 2]}) for i in range(100)])
    assert json_path._extract_arrow(col, ("a",), torch.device("cpu")) is not None
    assert json_path._extract_arrow(col, ("t",), torch.device("cpu")) is not None
    mixed = pa.array([json.dumps({"a": 1}), json.dumps({"a": "x"})])
    assert json_path._extract_arrow(mixed, ("a",), torch.device("cpu")) is None

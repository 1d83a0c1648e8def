"""SPARSE_FLOAT_VECTOR values: every input form pymilvus accepts, Milvus's rules, the
Arrow column and its CSR / wire / Python forms; and the field end to end through the
embedded client (search equal to brute force, persistence, deletes, filters, growing
rows, partial load, drop ratios, memory_info)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import DataType, MilvusClient
from engine import sparse
from engine.errors import DataError, ParamError


class _Csr:
    """The part of scipy's sparse matrix interface sparse.py reads (tocsr, shape, indptr,
    indices, data, sort_indices)."""

    def __init__(self, rows: list[dict], width: int = 100):
        self.shape = (len(rows), width)
        self.indptr = np.cumsum([0] + [len(r) for r in rows])
        self.indices = np.array([k for r in rows for k in reversed(list(r))], dtype=np.int32)
        self.data = np.array([r[k] for r in rows for k in reversed(list(r))], dtype=np.float32)

    def tocsr(self):
        return self

    def sort_indices(self):
        for a, b in zip(self.indptr[:-1], self.indptr[1:]):
            o = np.argsort(self.indices[a:b])
            self.indices[a:b], self.data[a:b] = self.indices[a:b][o], self.data[a:b][o]


ROWS = [{3: 0.5, 1: 0.25}, {}, {7: 1.0}]


@pytest.mark.parametrize("form", ["dict", "pairs", "strings", "wire", "matrix", "row_matrix"])
def test_every_input_form_gives_the_same_column(form):
    if form == "dict":
        vals = ROWS
    elif form == "pairs":
        vals = [list(r.items()) for r in ROWS]
    elif form == "strings":  # REST's JSON keys, pymilvus's "numeric strings"
        vals = [{str(k): str(v) for k, v in r.items()} for r in ROWS]
    elif form == "wire":
        vals = sparse.to_wire(sparse.to_arrow(ROWS, 3, "x", DataError))
    elif form == "matrix":
        vals = _Csr(ROWS)
    else:
        vals = [_Csr([r]) for r in ROWS]
    col = sparse.to_arrow(vals, 3, "x", DataError)
    assert sparse.to_python(col) == [{1: 0.25, 3: 0.5}, {}, {7: 1.0}]
    rows = sparse.csr(col, torch.device("cpu"))
    assert rows.indptr.tolist() == [0, 2, 2, 3]
    assert rows.indices.tolist() == [1, 3, 7]  # dimension order within a row


def test_real_scipy_matrix():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    m = scipy_sparse.csr_matrix(np.array([[0, 0.5, 0], [0, 0, 0], [2.0, 0, 1.0]]))
    col = sparse.to_arrow(m, 3, "x", DataError)
    assert sparse.to_python(col) == [{1: 0.5}, {}, {0: 2.0, 2: 1.0}]


@pytest.mark.parametrize("bad, words", [
    ([{-1: 0.5}], "from 0"), ([{2 ** 32 - 1: 0.5}], "from 0"), ([{1: -0.5}], "non-negative"),
    ([{1: float("nan")}], "finite"), ([[(1, 0.5), (1, 0.7)]], "twice"),
    ([{1.5: 0.5}], "integers"), ([{1: "x"}], "not a number"), (["abc"], "not a sparse"),
    ([b"\x00" * 5], "8 bytes"), (np.zeros((1, 4)), "dense array")])
def test_rules_are_refused_with_what_to_do(bad, words):
    with pytest.raises(DataError) as e:
        sparse.to_arrow(bad, 1, "field sp", DataError)
    assert words in e.value.message and "field sp" in e.value.message


def test_nulls_and_slices():
    col = sparse.to_arrow([{1: 1.0}, None, {2: 2.0}], 3, "x", DataError,
                          np.array([False, True, False]))
    assert sparse.to_python(col) == [{1: 1.0}, None, {2: 2.0}]
    assert sparse.to_python(col.slice(1)) == [None, {2: 2.0}]
    assert sparse.csr(col.slice(1), torch.device("cpu")).indptr.tolist() == [0, 0, 1]


def test_queries_take_one_row_or_many():
    assert sparse.queries({1: 1.0}, 10, ParamError).num_rows == 1
    assert sparse.queries([(1, 1.0), (2, 0.5)], 10, ParamError).num_rows == 1
    assert sparse.queries([{1: 1.0}, {2: 1.0}], 10, ParamError).num_rows == 2
    for bad in ([], [{1: 1.0}] * 11):
        with pytest.raises(ParamError, match="nq"):
            sparse.queries(bad, 10, ParamError)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.integers(0, 2 ** 32 - 2),
                                st.floats(0, 1e30, allow_nan=False, allow_infinity=False).map(lambda v: float(np.float32(v))), max_size=6),
                max_size=8))
def test_column_round_trips(rows):
    col = sparse.to_arrow(rows, len(rows), "x", DataError)
    assert sparse.to_python(col) == [dict(sorted(r.items())) for r in rows]
    wire = sparse.to_wire(col)
    assert sparse.to_python(sparse.to_arrow(wire, len(rows), "x", DataError)) == \
        sparse.to_python(col)


# -- the field end to end ----------------------------------------------------------------
def _rows(n: int, seed: int, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": start + i, "tag": (start + i) % 4,
             "sp": {rng.randrange(300) * 7919: round(rng.random() + 0.01, 4)
                    for _ in range(rng.randrange(0, 12))}} for i in range(n)]


def _exact(rows: list[dict], q: dict, k: int, keep=lambda r: True) -> list[tuple]:
    scored = [(sum(v * r["sp"].get(d, 0.0) for d, v in q.items()), r["id"]) for r in rows
              if keep(r) and set(q) & set(r["sp"])]
    return sorted(scored, key=lambda t: -t[0])[:k]


def _coll(path, index="SPARSE_INVERTED_INDEX", **params) -> MilvusClient:
    c = MilvusClient(str(path))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tag", DataType.INT64)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    p = c.prepare_index_params()
    p.add_index("sp", index, metric_type="IP", params=params)
    c.create_collection("c", schema=s, index_params=p)
    return c


def _check(c, rows, queries, k=10, flt="", keep=lambda r: True):
    got = c.search("c", queries, limit=k, filter=flt)
    for q, hits in zip(queries, got):
        want = _exact(rows, q, k, keep)
        assert [h["distance"] for h in hits] == pytest.approx([s for s, _ in want], rel=1e-5)
        scores = {i: s for s, i in _exact(rows, q, len(rows), keep)}
        assert all(scores[h["id"]] == pytest.approx(h["distance"], rel=1e-5) for h in hits)


@pytest.mark.parametrize("index", ["SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX"])
def test_search_equals_brute_force_sealed_and_growing(tmp_path, index):
    c = _coll(tmp_path, index)
    rows = _rows(600, 0)
    c.insert("c", rows[:400])
    c.flush("c")
    c.load_collection("c")
    c.insert("c", rows[400:])  # growing rows, visible at once
    queries = [r["sp"] for r in _rows(8, 1)] + [rows[10]["sp"]]
    _check(c, rows, queries)
    _check(c, rows, queries, flt="tag in [1, 2]", keep=lambda r: r["tag"] in (1, 2))
    assert c.describe_index("c", "sp")["metric_type"] == "IP"


def test_persistence_deletes_partial_load_and_memory_info(tmp_path):
    c = _coll(tmp_path)
    rows = _rows(500, 2)
    c.insert("c", rows)
    c.flush("c")
    c.delete("c", filter="id < 100")
    live = [r for r in rows if r["id"] >= 100]
    c.load_collection("c")
    queries = [r["sp"] for r in _rows(6, 3)]
    before = c.search("c", queries, limit=7)
    _check(c, live, queries, k=7)
    info = c.memory_info("c")["parts"]
    assert info["sp/postings"] > 0  # the postings are resident, counted by the allocator
    c.close()
    c = MilvusClient(str(tmp_path))
    c.load_collection("c")
    assert c.search("c", queries, limit=7) == before
    c.release_collection("c")
    c.load_collection("c", load_fields=["id", "sp"])  # partial load: tag stays on disk
    assert c.search("c", queries, limit=7) == before
    with pytest.raises(ParamError, match="not loaded"):
        c.search("c", queries, limit=3, output_fields=["tag"])
    c.release_collection("c")
    assert "sp/postings" not in c.memory_info("c").get("parts", {})


def test_drop_ratios(tmp_path):
    c = _coll(tmp_path, drop_ratio_build=0.25)
    rows = [{"id": i, "tag": 0, "sp": {1: 0.1 * (i + 1), 2: 1.0}} for i in range(10)]
    c.insert("c", rows)
    c.flush("c")
    c.load_collection("c")
    # a quarter of the segment's 20 values (the five smallest, all on dimension 1) are out
    # of the postings: only rows 5..9 can match on dimension 1
    hits = c.search("c", [{1: 1.0}], limit=10)[0]
    assert sorted(h["id"] for h in hits) == [5, 6, 7, 8, 9]
    # drop_ratio_search 0.5 ignores the query's smaller half: {1: 0.1} goes, {2: 1} stays
    hits = c.search("c", [{1: 0.1, 2: 1.0}], limit=3,
                    search_params={"params": {"drop_ratio_search": 0.5}})[0]
    assert [h["distance"] for h in hits] == [1.0, 1.0, 1.0]
    with pytest.raises(ParamError, match="drop_ratio_search"):
        c.search("c", [{1: 1.0}], search_params={"params": {"drop_ratio_search": 1.5}})


def test_index_rules(tmp_path):
    c = MilvusClient(str(tmp_path))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    c.create_collection("c", schema=s)
    for itype, metric, params, words in [
            ("IVF_FLAT", "IP", {}, "not supported on SPARSE_FLOAT_VECTOR"),
            ("SPARSE_INVERTED_INDEX", "L2", {}, "not supported"),
            ("SPARSE_INVERTED_INDEX", "BM25", {}, "BM25"),
            ("SPARSE_INVERTED_INDEX", "IP", {"bm25_k1": 1.2}, "BM25"),
            ("SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": 1}, "drop_ratio_build"),
            ("SPARSE_WAND", "IP", {"inverted_index_algo": "X"}, "inverted_index_algo")]:
        p = c.prepare_index_params()
        p.add_index("sp", itype, metric_type=metric, params=params)
        with pytest.raises(ParamError, match=words):
            c.create_index("c", p)
    with pytest.raises(ParamError, match="no dim"):
        s.add_field("sp2", DataType.SPARSE_FLOAT_VECTOR, dim=8)
    with pytest.raises(DataError, match="dense array"):
        c.insert("c", {"id": np.arange(2), "sp": np.zeros((2, 3))})


def test_grouping_and_range_search(tmp_path):
    c = _coll(tmp_path)
    rows = _rows(300, 4)
    c.insert("c", rows)
    c.load_collection("c")
    q = rows[0]["sp"] or {0: 1.0}
    groups = c.search("c", [q], limit=3, group_by_field="tag", output_fields=["tag"])[0]
    assert len({h["entity"]["tag"] for h in groups}) == len(groups)
    best = {}
    for s_, i in _exact(rows, q, len(rows)):
        best.setdefault(rows[i]["tag"], s_)
    assert [h["distance"] for h in groups] == pytest.approx(
        sorted(best.values(), reverse=True)[:3], rel=1e-5)
    ranged = c.search("c", [q], limit=50,
                      search_params={"params": {"radius": 0.5, "range_filter": 2.0}})[0]
    want = [s_ for s_, _ in _exact(rows, q, len(rows)) if 0.5 < s_ <= 2.0][:50]
    assert [h["distance"] for h in ranged] == pytest.approx(want, rel=1e-5)

"""The index registry and the index protocol on their own, and the design's test: a new
index type is one class and one registration, and the engine trains, lays out, loads,
counts and searches with it without another change."""
from __future__ import annotations

import pytest
import torch

import kernels
from engine import MilvusClient
from engine.errors import ParamError
from engine.index import registry
from engine.index.flat import Flat
from engine.index.ivf import IvfFlat

from ...conftest import basic_rows, basic_schema


def test_lookup_and_autoindex_resolution(monkeypatch):
    assert isinstance(registry.get("FLAT"), Flat) and isinstance(registry.get("IVF_FLAT"), IvfFlat)
    assert registry.find("INVERTED") is None  # a scalar index type
    assert {"FLAT", "IVF_FLAT", "AUTOINDEX"} <= set(registry.vector_types())
    with pytest.raises(ParamError, match="not supported"):
        registry.get("HNSW_NOPE")
    assert registry.resolve("AUTOINDEX", {}, 10) == ("FLAT", {})
    assert registry.resolve("AUTOINDEX", {}, registry.AUTO_IVF_MIN_ROWS) == (
        "IVF_FLAT", registry.AUTO_PARAMS)
    assert registry.resolve("IVF_FLAT", {"nlist": 4}, 10**9) == ("IVF_FLAT", {"nlist": 4})


def test_ivf_flat_implements_the_protocol():
    index = IvfFlat()
    params = index.check_params({"nlist": "8"})
    assert params["nlist"] == 8 and index.train_rows(params) == (8, 64 * 8)
    with pytest.raises(ParamError):
        index.check_params({"nlist": 0})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 16, generator=g)
    trained = index.train(x, params, "L2", torch.device("cpu"))
    assert trained["centroids"].shape == (8, 16)
    perm, layout = index.order(x, trained, "L2", torch.device("cpu"))
    assert torch.equal(perm.sort().values, torch.arange(500))
    offsets = layout["offsets"]
    assert offsets[0] == 0 and offsets[-1] == 500 and bool((offsets.diff() >= 0).all())
    resident = index.resident_parts(trained, torch.device("cpu"))
    assert index.resident_bytes(trained) == sum(t.numel() * t.element_size()
                                                for t in resident.values())
    xs = x[perm]
    q = torch.randn(5, 16, generator=g)
    probe = index.probe(q, resident, params, {"nprobe": 8}, "L2")  # every list: exact
    d, i = index.scan(q, xs, layout, probe, 10, "L2", None, None, None, None)
    d0, i0 = kernels.flat_search(q, xs, 10, "L2")
    assert torch.equal(i, i0) and torch.allclose(d, d0)
    # no layout (a segment sealed before training) or no resident parts: an exact scan
    d, i = index.scan(q, xs, None, probe, 10, "L2", None, None, None, None)
    assert torch.equal(i, i0)
    assert index.probe(q, {}, params, {}, "L2") is None


class _EveryOther(Flat):
    """A toy index with training, a layout and resident parts: trained parts are the mean
    vector; the layout stores rows with even positions first; its scan is exact."""

    name = "TOY_EVEN_FIRST"
    trains = True
    layout_suffix = "toy"
    part_labels = {"split": "toy_split"}

    def train_rows(self, params):
        return 1, 100

    def train(self, sample, params, metric, device):
        return {"mean": sample.float().mean(0, keepdim=True)}

    def order(self, vectors, trained, metric, device, params=None):
        n = vectors.shape[0]
        perm = torch.cat([torch.arange(0, n, 2), torch.arange(1, n, 2)])
        return perm, {"split": torch.tensor([(n + 1) // 2])}

    def resident_parts(self, trained, device):
        return {"mean": trained["mean"].to(device)}

    def resident_bytes(self, trained):
        return trained["mean"].numel() * 4


def test_a_new_index_type_is_one_class_and_one_registration(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._TYPES, _EveryOther.name, _EveryOther())
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    c.create_collection("c", schema=basic_schema())
    rows = basic_rows(300)
    c.insert("c", rows)
    p = MilvusClient.prepare_index_params()
    p.add_index("vec", _EveryOther.name, metric_type="L2")
    c.create_index("c", p)  # trained, and the sealed rows rewritten in its order
    coll = c._db.collections["c"]
    assert coll.sealed and all(s.layout_field == "vec" for s in coll.sealed)
    c.load_collection("c")
    parts = c.memory_info("c")["parts"]
    assert parts["vec/mean"] == 8 * 4 and parts["vec/toy_split"] == 8 * len(coll.sealed)
    for r in rows[:20]:
        hit = c.search("c", [r["vec"]], limit=1)[0][0]
        assert hit["id"] == r["id"]
    c.release_collection("c")
    assert c.memory_info()["used_bytes"] == 0
    c.close()

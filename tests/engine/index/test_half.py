"""Half-precision residency: resident_dtype="float16" on FLAT and IVF_FLAT over a
FLOAT_VECTOR field halves the bytes a load puts on the device, keeps recall within 0.005
of float32 on the manifold data set, and reads still return the stored float32 rows; and
half-precision fields scanned in their own dtype on CUDA."""
import numpy as np
import pytest
import torch

from bench.datasets import manifold
from engine import DataType, MilvusClient
from engine.errors import ParamError
from kernels import ref

DIM = 32


def _make(c, itype, params, rows=None, vtype=DataType.FLOAT_VECTOR, name="h"):
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", vtype, dim=DIM)
    p = c.prepare_index_params()
    p.add_index("v", itype, metric_type="L2", params=params)
    c.create_collection(name, schema=s, index_params=p)
    c.release_collection(name)
    if rows is not None:
        c.insert(name, {"id": np.arange(len(rows)), "v": rows})
        c.flush(name)


def _recall(hits, truth) -> float:
    return float(np.mean([len({h["id"] for h in per} & set(t)) / len(t)
                          for per, t in zip(hits, truth)]))


@pytest.mark.parametrize("itype, params, sp", [
    ("FLAT", {}, {}), ("IVF_FLAT", {"nlist": 32}, {"nprobe": 8})])
def test_float16_residency_halves_bytes_keeps_recall_and_exact_reads(tmp_path, device, itype,
                                                                     params, sp):
    data, queries = manifold(8000, 100, dim=DIM)
    truth = ref.flat_search(torch.from_numpy(queries), torch.from_numpy(data), 10,
                            "L2")[1].tolist()
    got = {}
    for rd in ("float32", "float16"):
        c = MilvusClient(str(tmp_path / rd), device=device)
        _make(c, itype, {**params, "resident_dtype": rd}, rows=data)
        c.load_collection("h")
        got[rd] = (c.memory_info("h")["parts"]["v"],
                   _recall(c.search("h", queries, limit=10, search_params={"params": sp}),
                           truth))
        if rd == "float16":
            hits = c.search("h", queries[:3], limit=2, output_fields=["v"],
                            search_params={"params": sp})
            for per in hits:  # reads return the stored float32 rows, not the halves
                for h in per:
                    np.testing.assert_array_equal(np.asarray(h["entity"]["v"], np.float32),
                                                  data[h["id"]])
            assert c.describe_index("h", "v")["resident_dtype"] == "float16"
        c.close()
    assert got["float16"][0] * 2 == got["float32"][0] == 8000 * DIM * 4
    assert got["float16"][1] >= got["float32"][1] - 0.005, got


def test_rows_sealed_while_loaded_go_half_and_growing_rows_stay_exact(tmp_path):
    data, _ = manifold(3000, 1, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "FLAT", {"resident_dtype": "float16"}, rows=data[:2000])
    c.load_collection("h")
    c.insert("h", {"id": np.arange(2000, 3000), "v": data[2000:]})
    hit = c.search("h", data[2500:2501], limit=1)[0][0]
    assert hit["id"] == 2500 and hit["distance"] == 0.0  # growing rows: float32, exact
    c.flush("h")
    parts = c.memory_info("h")["parts"]
    assert parts["v"] == 3000 * DIM * 2
    hit = c.search("h", data[2500:2501], limit=1, output_fields=["v"])[0][0]
    assert hit["id"] == 2500
    np.testing.assert_array_equal(np.asarray(hit["entity"]["v"], np.float32), data[2500])


@pytest.mark.parametrize("itype, params, vtype, words", [
    ("HNSW", {"resident_dtype": "float16"}, DataType.FLOAT_VECTOR, "not for HNSW"),
    ("IVF_SQ8", {"resident_dtype": "float16"}, DataType.FLOAT_VECTOR, "not for IVF_SQ8"),
    ("FLAT", {"resident_dtype": "float16"}, DataType.FLOAT16_VECTOR, "FLOAT16_VECTOR"),
    ("FLAT", {"resident_dtype": "int8"}, DataType.FLOAT_VECTOR, "must be one of")])
def test_resident_dtype_is_checked(tmp_path, itype, params, vtype, words):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    with pytest.raises(ParamError, match=words):
        _make(c, itype, params, vtype=vtype)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_half_rows_are_multiplied_in_their_dtype_on_cuda(dtype, metric):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 64, generator=g).to(dtype)
    q = torch.randn(20, 64, generator=g)
    qn = q / q.norm(dim=1, keepdim=True) if metric == "COSINE" else q
    want = ref.pairwise_distance(qn, x.float(), metric)
    got = ref.pairwise_distance(qn.cuda(), x.cuda(), metric).cpu()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=2e-2, atol=5e-2 if dtype == torch.float16
                               else 2e-1)

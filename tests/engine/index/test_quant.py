"""IVF_SQ8 and IVF_PQ end to end: codes resident instead of rows, recall on the manifold
data set next to faiss's same index, persistence, deletes and filters never returned,
partial load, refine, rows read back from disk, Milvus's parameters and refusals, and the
load that fits as IVF_PQ where IVF_FLAT does not."""
import numpy as np
import pytest
import torch

from bench.datasets import manifold
from engine import DataType, MilvusClient
from engine.errors import InsufficientMemory, ParamError, StorageError
from engine.index.ivf import by_list
from kernels import quant, ref

from ...conftest import column_file

faiss = pytest.importorskip("faiss")

DIM = 32


def _make(c: MilvusClient, itype: str, params: dict, metric="L2", rows=None, dim=DIM,
          name="q", vtype=DataType.FLOAT_VECTOR) -> None:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tag", DataType.INT64)
    s.add_field("v", vtype, dim=dim)
    p = c.prepare_index_params()
    p.add_index("v", itype, metric_type=metric, params=params)
    c.create_collection(name, schema=s, index_params=p)
    c.release_collection(name)  # (created loaded, as Milvus does): rows go to disk first
    if rows is not None:
        c.insert(name, {"id": np.arange(len(rows)), "tag": np.arange(len(rows)) % 10, "v": rows})
        c.flush(name)


def _ids(hits) -> list[list[int]]:
    return [[h["id"] for h in per] for per in hits]


def _recall(found, truth) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def _list_order(x, nlist, metric):
    cent = ref.kmeans(x, nlist, metric)
    lab = ref.assign(x, cent, metric)
    perm, offsets = by_list(lab, nlist)  # as an index build lays a segment out
    return cent, lab[perm], perm, offsets


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_sq8_scan_is_the_float_scan_of_the_decoded_rows(metric):
    data, queries = manifold(3000, 30, dim=16)
    x = quant.unit_rows(torch.from_numpy(data), metric)
    cent, _, perm, offsets = _list_order(x, 8, metric)
    t = quant.sq8_train(x)
    codes = quant.sq8_encode(x[perm], t["vmin"], t["vdiff"])
    q = torch.from_numpy(queries)
    probes = ref.coarse_probe(q, cent, 3, metric)
    d, i = ref.ivf_sq8_search(q, codes, t["scale"], t["base"], offsets, probes, 10, metric)
    decoded = ref.sq8_decode(codes, t["scale"], t["base"])
    twin = "IP" if metric == "COSINE" else metric  # COSINE rows were normalised first
    qq = q / q.norm(dim=1, keepdim=True) if metric == "COSINE" else q
    d2, i2 = ref.ivf_search(qq, decoded, offsets, probes, 10, twin)
    assert torch.equal(i, i2)
    assert torch.allclose(d, d2, atol=1e-3)
    # every code decodes to within half a step of the value it codes
    assert float((decoded - x[perm]).abs().max()) <= float(t["scale"].max()) * 0.51 + 1e-6


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_pq_distances_are_those_of_the_reconstructed_rows(metric):
    data, queries = manifold(3000, 30, dim=16)
    x = quant.unit_rows(torch.from_numpy(data), metric)
    cent, lab, perm, offsets = _list_order(x, 8, metric)
    res = quant.residuals(x[perm], cent, lab)
    cb = quant.pq_train(res, 4)
    assert cb.shape == (4, 256, 4)
    codes = quant.pq_encode(res, cb)
    recon = cent[lab] + torch.cat([cb[j][codes[:, j].long()] for j in range(4)], 1)
    q = torch.from_numpy(queries)
    probes = ref.coarse_probe(q, cent, 3, metric)
    mask = torch.rand(len(x), generator=torch.Generator().manual_seed(1)) > 0.3
    d, i = ref.ivf_pq_search(q, codes, cent, cb, offsets, probes, 10, metric, mask)
    qq = q / q.norm(dim=1, keepdim=True) if metric == "COSINE" else q
    d2, i2 = ref.ivf_search(qq, recon, offsets, probes, 10, "IP" if metric == "COSINE"
                            else metric, mask)
    assert torch.allclose(d, d2, atol=1e-3)
    assert (i == i2).float().mean() > 0.97  # ties between equal codes may swap
    assert bool(mask[i[i >= 0]].all())


def test_refine_reranks_by_exact_distance():
    x = torch.randn(500, 8)
    q = torch.randn(4, 8)
    cand = torch.stack([torch.randperm(500)[:50] for _ in range(4)])
    cand[0, 10:] = -1  # fewer candidates than asked: padded
    for metric in ("L2", "IP", "COSINE"):
        d, i = ref.refine(q, x, cand, 5, metric)
        full = ref.pairwise_distance(q if metric != "COSINE" else q / q.norm(dim=1,
                                     keepdim=True), x, metric)
        for r in range(4):
            c = cand[r][cand[r] >= 0]
            best = c[torch.argsort(full[r, c])[:5]]
            assert i[r].tolist() == best.tolist()
            assert torch.allclose(d[r], full[r, best], atol=1e-4)


@pytest.mark.parametrize("itype, params, faiss_index", [
    ("IVF_SQ8", {"nlist": 48}, "sq8"), ("IVF_PQ", {"nlist": 48, "m": 8}, "pq")])
def test_recall_on_manifold_next_to_faiss(tmp_path, itype, params, faiss_index):
    data, queries = manifold(12000, 200, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, itype, params, rows=data)
    c.load_collection("q")
    truth = ref.flat_search(torch.from_numpy(queries), torch.from_numpy(data), 10,
                            "L2")[1].tolist()
    ours = _recall(_ids(c.search("q", queries, limit=10,
                                 search_params={"params": {"nprobe": 16}})), truth)
    quantizer = faiss.IndexFlatL2(DIM)
    if faiss_index == "sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, DIM, 48, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_L2, False)
    else:
        index = faiss.IndexIVFPQ(quantizer, DIM, 48, 8, 8)
    index.train(data)
    index.add(data)
    index.nprobe = 16
    theirs = _recall(index.search(queries, 10)[1].tolist(), truth)
    assert ours >= theirs - 0.02, (ours, theirs)
    assert ours >= (0.95 if faiss_index == "sq8" else 0.7)


@pytest.mark.parametrize("itype, params, per_row", [
    ("IVF_SQ8", {"nlist": 16}, DIM), ("IVF_PQ", {"nlist": 16, "m": 4}, 4),
    ("IVF_PQ", {"nlist": 16, "m": 8, "refine": True}, 8)])
def test_end_to_end_persistence_deletes_filters_partial_load(tmp_path, itype, params,
                                                             per_row):
    data, queries = manifold(4000, 20, dim=DIM)
    path = str(tmp_path / "d")
    c = MilvusClient(path, device="cpu")
    _make(c, itype, params, rows=data)
    c.delete("q", filter="id < 1000")
    c.load_collection("q")
    info = c.memory_info("q")["parts"]
    assert info["v/codes"] == 4000 * per_row
    assert ("v" in info) == bool(params.get("refine"))  # rows resident only to refine
    sp = {"params": {"nprobe": 8, **({"refine_k": 3} if params.get("refine") else {})}}
    found = c.search("q", queries, limit=10, search_params=sp, filter="tag != 3",
                     output_fields=["v", "tag"])
    assert all(h["id"] >= 1000 and h["entity"]["tag"] != 3 for per in found for h in per)
    for per in found:  # the vectors come back exactly as stored (read from disk)
        for h in per:
            np.testing.assert_array_equal(h["entity"]["v"], data[h["id"]])
    c.close()
    c = MilvusClient(path, device="cpu")
    c.release_collection("q")
    c.load_collection("q", load_fields=["id", "v"])  # partial: tag stays on disk
    again = c.search("q", queries, limit=10, search_params=sp, filter="id >= 2000")
    c.release_collection("q")
    c.load_collection("q")
    assert c.search("q", queries, limit=10, search_params=sp, filter="id >= 2000") == again
    assert all(h["id"] >= 2000 for per in again for h in per)


def test_refine_lifts_recall_and_range_search(tmp_path):
    data, queries = manifold(20000, 100, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "IVF_PQ", {"nlist": 64, "m": 4, "refine": "true", "refine_type": "FP32"},
          rows=data)
    c.load_collection("q")
    truth = ref.flat_search(torch.from_numpy(queries), torch.from_numpy(data), 10,
                            "L2")[1].tolist()
    plain = _recall(_ids(c.search("q", queries, limit=10,
                                  search_params={"params": {"nprobe": 16}})), truth)
    refined = _recall(_ids(c.search("q", queries, limit=10, search_params={
        "params": {"nprobe": 16, "refine_k": 8}})), truth)
    assert refined >= plain + 0.15 and refined >= 0.9, (plain, refined)
    hits = c.search("q", queries[:5], limit=50, search_params={
        "params": {"nprobe": 16, "refine_k": 4, "radius": 2.0, "range_filter": 0.5}})
    for per in hits:  # refined distances are exact, so the range holds exactly
        assert all(0.5 <= h["distance"] < 2.0 for h in per)


def test_rows_sealed_while_loaded_and_growing_rows(tmp_path):
    data, queries = manifold(3000, 10, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "IVF_SQ8", {"nlist": 8}, rows=data[:2000])
    c.load_collection("q")
    c.insert("q", {"id": np.arange(2000, 3000), "tag": np.zeros(1000, np.int64),
                   "v": data[2000:]})
    grow = c.search("q", data[2500:2503], limit=1, output_fields=["v"])
    assert [per[0]["id"] for per in grow] == [2500, 2501, 2502]  # growing: exact
    c.flush("q")  # sealed while loaded: coded, rows left on disk
    assert "v" not in c.memory_info("q")["parts"]
    hits = c.search("q", data[2500:2503], limit=1, output_fields=["v"],
                    search_params={"params": {"nprobe": 8}})
    assert [per[0]["id"] for per in hits] == [2500, 2501, 2502]
    np.testing.assert_array_equal(hits[0][0]["entity"]["v"], data[2500])


def test_a_damaged_row_read_from_disk_is_refused(tmp_path):
    data, _ = manifold(500, 1, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "IVF_SQ8", {"nlist": 4}, rows=data)
    c.load_collection("q")
    coll = c._db.collections["q"]
    shard = coll.segment_dir(coll.sealed[0].id) / column_file(c, "q", "v")
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(StorageError, match="damaged"):
        c.query("q", filter="id >= 0", output_fields=["v"], limit=5)
    assert c.query("q", filter="id >= 0", output_fields=["tag"], limit=5)  # codes unaffected


@pytest.mark.parametrize("itype, params, words", [
    ("IVF_PQ", {"nlist": 8}, "needs m"),
    ("IVF_PQ", {"nlist": 8, "m": 5}, "multiple of the number of subquantizers"),
    ("IVF_PQ", {"nlist": 8, "m": 4, "nbits": 4}, "nbits"),
    ("IVF_SQ8", {"nlist": 0}, "nlist"),
    ("IVF_SQ8", {"refine": "maybe"}, "refine must be"),
    ("IVF_SQ8", {"refine_type": "FP32"}, "refine_type applies with refine"),
    ("IVF_PQ", {"m": 4, "refine": True, "refine_type": "SQ8"}, "refine_type 'SQ8'")])
def test_parameters_are_checked(tmp_path, itype, params, words):
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    with pytest.raises(ParamError, match=words):
        _make(c, itype, params)
    assert not c.has_collection("q")


def test_refine_k_needs_refine(tmp_path):
    data, _ = manifold(600, 1, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "IVF_PQ", {"nlist": 4, "m": 4}, rows=data)
    c.load_collection("q")
    with pytest.raises(ParamError, match="refine_k applies"):
        c.search("q", data[:1], limit=3, search_params={"params": {"refine_k": 2}})
    _make(c, "IVF_SQ8", {"nlist": 4}, name="untrained")  # no sealed rows: nothing trained
    c.insert("untrained", {"id": np.arange(3), "tag": np.zeros(3, np.int64), "v": data[:3]})
    c.load_collection("untrained")
    with pytest.raises(ParamError, match="refine_k applies"):
        c.search("untrained", data[:1], limit=3, search_params={"params": {"refine_k": 2}})
    with pytest.raises(ParamError, match="nprobe"):
        c.search("untrained", data[:1], limit=3, search_params={"params": {"nprobe": 0}})
    c.release_collection("q")
    c.drop_index("q", "v")
    p = c.prepare_index_params()
    p.add_index("v", "IVF_PQ", metric_type="L2", params={"nlist": 4, "m": 4, "refine": True})
    c.create_index("q", p)
    c.load_collection("q")
    with pytest.raises(ParamError, match="refine_k must be"):
        c.search("q", data[:1], limit=3, search_params={"params": {"refine_k": 0.5}})
    assert len(c.search("q", data[:1], limit=3,
                        search_params={"params": {"refine_k": "2.5"}})[0]) == 3


def test_a_collection_too_large_as_ivf_flat_loads_as_ivf_pq(tmp_path):
    data, queries = manifold(10000, 5, dim=64)
    # IVF_FLAT keeps 256 bytes a row resident; IVF_PQ m=8 keeps 8 (plus pk and mask)
    limit = 10000 * (64 * 4) // 2
    c = MilvusClient(str(tmp_path / "d"), device="cpu", memory_limit=limit)
    _make(c, "IVF_FLAT", {"nlist": 16}, rows=data, dim=64, name="flat")
    with pytest.raises(InsufficientMemory):
        c.load_collection("flat")
    assert c.memory_info("flat") == {"bytes": 0, "parts": {}}
    _make(c, "IVF_PQ", {"nlist": 16, "m": 8}, rows=data, dim=64, name="pq")
    c.load_collection("pq")
    info = c.memory_info("pq")
    assert info["bytes"] < limit / 3  # codes, keys, tag, mask and the codebooks
    assert info["parts"]["v/codes"] == 10000 * 8 and "v" not in info["parts"]
    assert len(c.search("pq", queries, limit=5)[0]) == 5


def test_half_precision_fields_take_quantised_indexes(tmp_path):
    data, queries = manifold(3000, 10, dim=DIM)
    c = MilvusClient(str(tmp_path / "d"), device="cpu")
    _make(c, "IVF_PQ", {"nlist": 8, "m": 8, "refine": True, "refine_type": "FP16"},
          rows=data.astype(np.float16), vtype=DataType.FLOAT16_VECTOR)
    c.load_collection("q")
    truth = ref.flat_search(torch.from_numpy(queries), torch.from_numpy(data), 10,
                            "L2")[1].tolist()
    found = _ids(c.search("q", queries, limit=10, search_params={
        "params": {"nprobe": 8, "refine_k": 4}}))
    assert _recall(found, truth) >= 0.9


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_pq_decoded_lists_equal_lookup_tables(metric):
    """A list scanned for many queries is decoded and multiplied, for few by lookup
    tables: one query at a time (tables) gives what the whole batch (decoded) gives."""
    data, queries = manifold(2000, 40, dim=16)
    x = torch.from_numpy(data)
    cent, lab, perm, offsets = _list_order(x, 4, metric)
    res = quant.residuals(x[perm], cent, lab)
    cb = quant.pq_train(res, 8)                  # dsub 2: most lists see more queries
    codes = quant.pq_encode(res, cb)
    q = torch.from_numpy(queries)
    probes = ref.coarse_probe(q, cent, 2, metric)
    d, i = ref.ivf_pq_search(q, codes, cent, cb, offsets, probes, 5, metric)
    for r in range(0, 40, 7):
        d1, i1 = ref.ivf_pq_search(q[r:r + 1], codes, cent, cb, offsets, probes[r:r + 1], 5,
                                   metric)
        torch.testing.assert_close(d1[0], d[r], rtol=1e-4, atol=1e-4)

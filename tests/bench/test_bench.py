import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.datasets import manifold

ROOT = Path(__file__).parents[2]


def test_manifold_follows_its_recipe():
    data, queries = manifold(50, 7, dim=12, intrinsic=3, seed=4)
    assert data.shape == (50, 12) and queries.shape == (7, 12) and data.dtype == np.float32
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 12))
    z = rng.standard_normal((57, 3))
    expect = (np.tanh(z @ w) + 0.05 * rng.standard_normal((57, 12))).astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([data, queries]), expect)
    again, _ = manifold(50, 7, dim=12, intrinsic=3, seed=4)
    np.testing.assert_array_equal(data, again)
    other, _ = manifold(50, 7, dim=12, intrinsic=3, seed=5)
    assert not np.array_equal(data, other)


def _bench(*args):
    out = subprocess.run([sys.executable, "-m", "bench", *args, "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bench_insert_json_line():
    got = _bench("insert", "--rows", "3000", "--dim", "16", "--dict-rows", "500",
                 "--batch", "1000", "--peer-rows", "0", "--device", "cpu")
    assert got["bench"] == "insert"
    cols, dicts = got["results"]
    assert cols["rows"] == 3000 and dicts["rows"] == 500
    assert cols["rows_per_s"] > 0 and cols["flush_MB_per_s"] > 0
    assert cols["sealed_MB"] == 3000 * (16 * 4 + 8) / 1e6


def test_bench_search_recall_is_exact_for_flat():
    got = _bench("search", "--rows", "2000", "--dim", "16", "--nq", "50", "--batch", "1,50",
                 "--nlist", "0", "--device", "cpu")
    assert [r["batch"] for r in got["results"]] == [1, 50]
    assert all(r["recall@10"] == 1.0 for r in got["results"])


def test_bench_search_ivf_rows_per_nprobe():
    got = _bench("search", "--rows", "3000", "--dim", "16", "--nq", "40", "--nlist", "16",
                 "--nprobe", "1,16", "--no-faiss", "--device", "cpu")
    rows = {r["nprobe"]: r for r in got["results"]}
    assert rows[16]["recall@10"] == 1.0  # all lists probed: exact
    assert rows[1]["recall@10"] < 1.0 and rows[1]["index"] == "IVF_FLAT"


def test_bench_search_hnsw_sweeps_ef_next_to_faiss():
    pytest.importorskip("faiss")
    got = _bench("search", "--rows", "3000", "--dim", "16", "--nq", "40", "--index", "HNSW",
                 "--M", "8", "--ef-construction", "40", "--ef", "8,64", "--device", "cpu")
    rows = {r["ef"]: r for r in got["results"]}
    assert set(rows) == {8, 64} and rows[64]["index"] == "HNSW"
    assert rows[64]["recall@10"] >= rows[8]["recall@10"] and rows[64]["recall@10"] > 0.9
    assert rows[64]["faiss_recall"] > 0.9 and rows[64]["qps_vs_faiss"] > 0


@pytest.mark.parametrize("index, extra, per_vector", [
    ("IVF_SQ8", [], 16), ("IVF_PQ", ["--m", "4"], 4),
    ("IVF_PQ", ["--m", "4", "--refine-k", "4"], 4 + 64)])
def test_bench_search_quantised_next_to_faiss(index, extra, per_vector):
    pytest.importorskip("faiss")
    got = _bench("search", "--rows", "5000", "--dim", "16", "--nq", "40", "--nlist", "16",
                 "--nprobe", "2,16", "--index", index, *extra, "--device", "cpu")
    rows = {r["nprobe"]: r for r in got["results"]}
    assert rows[16]["index"] == index and rows[16]["qps_vs_faiss"] > 0
    assert abs(rows[16]["recall@10"] - rows[16]["faiss_recall"]) < 0.1
    assert got["vector_bytes_per_vector"] == per_vector  # codes (and refine rows)


def test_bench_load_reports_ratio_to_copy_limit():
    got = _bench("load", "--rows", "3000", "--dim", "16", "--repeat", "1", "--device", "cpu")
    by = {r["what"]: r for r in got["results"]}
    full, release = by["full load"], by["release"]
    plain, partial = by["full load, checksums not verified"], by["partial load (id, vector)"]
    assert full["limit"] == "memory copy"
    assert full["bytes"] == plain["bytes"] > partial["bytes"] > 3000 * 16 * 4
    assert full["ratio_to_limit"] > 0 and plain["ratio_to_limit"] > 0
    assert release["seconds"] >= 0


def test_bench_filter_counts_match_the_data():
    got = _bench("filter", "--rows", "2000", "--dim", "8", "--batch", "10", "--repeat", "1",
                 "--device", "cpu")
    by_expr = {r["expr"]: r["matches"] for r in got["results"]}
    assert by_expr["age == 7"] == 20 and by_expr["age >= 10"] == 1800
    assert by_expr['meta["cat"] == 7'] == 20


def test_bench_serve_has_no_errors():
    got = _bench("serve", "--rows", "500", "--dim", "8", "--clients", "2", "--requests", "5",
                 "--inserts", "3", "--device", "cpu")
    by = {r["requests"]: r for r in got["results"]}
    assert by["search"]["count"] == 10 and by["insert"]["count"] == 3
    assert by["search"]["errors"] == 0 and by["insert"]["errors"] == 0


def test_bench_grpc_runs_through_pymilvus():
    import pytest

    pytest.importorskip("pymilvus")
    got = _bench("grpc", "--rows", "2000", "--dim", "8", "--nq", "10", "--nlist", "8",
                 "--nprobe", "8", "--batch", "1,10", "--no-lite", "--device", "cpu")
    assert [r["batch"] for r in got["results"]] == [1, 10]
    assert all(r["server"] == "Hotset (gRPC)" and r["qps"] > 0 for r in got["results"])


def test_bench_kernels_sweep_agrees_with_ref_under_the_interpreter(tmp_path, monkeypatch):
    """The tuning sweep runs (on CPU through the Triton interpreter), every setting finds
    what the plain-torch path finds, batch-1 latency is measured with and without graphs,
    and --crossover writes the dispatch table for the device."""
    table = tmp_path / "kernels.json"
    monkeypatch.setenv("HOTSET_KERNEL_TABLE", str(table))
    got = _bench("kernels", "--rows", "600", "--dim", "16", "--nq", "3", "--nlist", "8",
                 "--nprobe", "2", "--repeat", "1", "--grouped-tile", "16,16", "--k", "2",
                 "--device", "cpu", "--latency", "3", "--crossover", "--crossover-max", "16")
    kinds = [r["kernel"] for r in got["results"]]
    assert kinds[0] == "torch (ref)" and len(kinds) == 9
    assert kinds[6] == "triton grouped ieee"  # (tf32 too on CUDA)
    assert kinds[7:] == ["torch matmul+topk (FLAT)", "triton grouped (FLAT)"]
    for r in got["results"]:
        assert r["agrees_with_ref"] == 1.0 and r["GB_per_s"] > 0 and r["of_bound"] > 0
    lat = got["latency"]
    assert len(lat) == 5 and all(0 < r["p50_us"] <= r["p99_us"] for r in lat)
    saved = json.loads(table.read_text())["devices"]["cpu"]
    assert set(got["crossover"]) == {"table", "ivf_flat", "ivf_sq8", "ivf_pq", "flat"}
    assert all(saved[k] == got["crossover"][k] > 0 for k in ("ivf_flat", "flat"))


def test_roofline_counts_the_reads_each_scan_makes():
    from bench.roofline import bounds

    one = bounds(1_000_000, 128, 1024, 32, 1, 3.35e12, 495e12, 67e12)
    big = bounds(1_000_000, 128, 1024, 32, 10_000, 3.35e12, 495e12, 67e12)
    # one query: both read its 32 lists once (32/1024 of 512 MB)
    assert abs(one["per-pair GB"] - 0.016) < 1e-3 and one["grouped GB"] <= one["per-pair GB"]
    # 10,000 queries: 312 a list, read in 10 tiles of 32 instead of 312 times
    assert abs(big["per-pair GB"] / big["grouped GB"] - 312.5 / 10) < 0.1
    assert big["grouped QPS bound"] > 1e6 and big["per-pair bound by"] == "memory"
    got = _bench("roofline", "--nprobe", "8", "--batch", "1,100")
    assert len(got["results"]) == 4 and got["bandwidth_TBps"] == 3.35


def test_cpu_baseline_reopens_the_collection_on_the_cpu(tmp_path):
    """--cpu-baseline reopens the data directory the device run used (its load intent is
    restored in the background) and fills cpu_qps / vs_cpu into the rows of its batch."""
    from engine import DataType, MilvusClient
    from bench import search

    data, queries = manifold(3000, 20, dim=16)
    c = MilvusClient(str(tmp_path), device="cpu")
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
    c.create_collection(search.NAME, schema=s)
    c.insert(search.NAME, {"id": np.arange(3000), "vector": data})
    c.flush(search.NAME)
    p = MilvusClient.prepare_index_params()
    p.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": 8})
    c.create_index(search.NAME, p)
    c.load_collection(search.NAME)
    c.close()
    rows = [{"nprobe": 2, "batch": 20, "qps": 100.0}, {"nprobe": 2, "batch": 1, "qps": 5.0}]
    search._cpu_baseline(str(tmp_path), queries, [2], 20, 10, rows)
    assert rows[0]["cpu_qps"] > 0 and rows[0]["vs_cpu"] == 100.0 / rows[0]["cpu_qps"]
    assert "cpu_qps" not in rows[1]


def test_bench_search_milvus_lite_peer_columns():
    """--milvus-lite measures the peer's IVF_FLAT on the same data (same nlist/nprobe) and
    reports its recall against the same ground truth."""
    import pytest

    pytest.importorskip("milvus_lite", reason="the Milvus Lite peer is in the bench extra")
    got = _bench("search", "--rows", "3000", "--dim", "16", "--nq", "20", "--nlist", "8",
                 "--nprobe", "8", "--no-faiss", "--milvus-lite", "--device", "cpu")
    row = got["results"][0]
    assert row["nprobe"] == 8 and row["lite_qps"] > 0
    assert 0.5 < row["lite_recall"] <= 1.0  # (the peer is not exact even at nprobe = nlist)
    assert row["recall@10"] == 1.0
    assert row["qps_vs_lite"] == row["qps"] / row["lite_qps"]


def test_run_batches_times_the_best_of_repeated_passes():
    """A warm-up call, then whole passes until min_seconds were spent (at most max_passes);
    the best pass counts and every query is answered once per pass."""
    from bench.timing import run_batches

    now = [0.0]  # a fake clock: each call "takes" its scheduled seconds, no sleeping
    calls, delays = [], iter([0.0, 0.03, 0.01, 0.02, 0.0, 0.0])

    def fn(b):
        calls.append(len(b))
        now[0] += next(delays)
        return [[0]] * len(b)

    found, best = run_batches(fn, np.zeros((4, 2)), 4, min_seconds=0.05, max_passes=5,
                              clock=lambda: now[0])
    assert calls == [4, 4, 4, 4] and len(found) == 4  # warm-up + 3 passes (0.06 s >= 0.05)
    assert best == pytest.approx(0.01)
    calls.clear()
    delays = iter([0.0] * 10)
    run_batches(fn, np.zeros((4, 2)), 2, min_seconds=10.0, max_passes=2,
                clock=lambda: now[0])
    assert calls == [2, 2, 2, 2, 2]  # warm-up + 2 passes of 2 batches: capped


def test_bench_scale_local_workers_find_the_same_hits():
    got = _bench("scale", "--rows", "3000", "--dim", "16", "--segments", "4", "--nlist", "16",
                 "--nq", "60", "--nq1", "5", "--batch", "30", "--workers", "1,2",
                 "--kind", "local")
    rows = got["results"]
    assert [r["workers"] for r in rows] == ["1 (in-process)", "1 (local)", "2 (local)"]
    assert all(r["same_hits"] and r["qps_b30"] > 0 and r["load_s"] > 0 for r in rows)


def test_bench_scale_ray_actors_find_the_same_hits():
    import pytest

    pytest.importorskip("ray")
    got = _bench("scale", "--rows", "3000", "--dim", "16", "--segments", "4", "--nlist", "16",
                 "--nq", "60", "--nq1", "5", "--batch", "30", "--workers", "2",
                 "--kind", "ray")
    rows = got["results"]
    assert [r["workers"] for r in rows] == ["1 (in-process)", "2 (ray)"]
    assert all(r["same_hits"] for r in rows) and rows[1]["overhead_us_b1"] != 0

"""The Triton kernels compile for Hopper (sm_90) on a machine without a GPU, and nothing
spills: registers stay within what lets several programs share a multiprocessor. The
interpreter (how CI runs the kernels) accepts code the compiler rejects and never shows
spills, so this is the check that the CUDA build is sound."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_REGISTERS = 128  # 128 threads x 128 registers: at least 4 programs per multiprocessor
# HNSW runs one program per query with its beam in registers: fewer, larger programs
MAX_REGISTERS_HNSW = 255
# the grouped kernel decoding SQ8/PQ codes: one 256-thread program a multiprocessor (its
# decoded block and norms on top of the float kernel's 128); its launch caps it here
MAX_REGISTERS_DECODING = 192


def _cuobjdump() -> Path | None:
    """Triton's bundled cuobjdump, found without importing triton in this process (where
    the other kernel tests run it under the interpreter)."""
    spec = importlib.util.find_spec("triton")
    if spec is None or spec.origin is None:
        return None
    tool = Path(spec.origin).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return tool if tool.exists() else None


@pytest.mark.skipif(_cuobjdump() is None, reason="triton (with its CUDA tools) is not installed")
def test_list_scan_kernels_build_for_hopper_without_spills():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-m", "kernels.build_check", "--quick", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    kinds = [r["kernel"] for r in rows]
    assert kinds.count("ivf") == 4 and kinds.count("sq8") == 2 and kinds.count("pq") == 2
    assert kinds.count("hnsw") == 2 and kinds.count("grouped") == 4
    assert {r["METRIC"] for r in rows if r["kernel"] == "ivf"} == {0, 1, 2}
    assert {r["L2"] for r in rows if r["kernel"] in ("sq8", "pq")} == {True, False}
    assert {r["HALF"] for r in rows if r["kernel"] == "grouped"} == {True, False}
    assert {r["DECODE"] for r in rows if r["kernel"] == "grouped"} == {0, 1, 2}
    for r in rows:
        assert r["arch"] == 90
        assert r["stack_bytes"] == 0 and r["local_bytes"] == 0, r
        bound = MAX_REGISTERS_HNSW if r["kernel"] == "hnsw" else \
            MAX_REGISTERS_DECODING if r.get("DECODE") else MAX_REGISTERS
        assert 0 < r["registers"] <= bound, r

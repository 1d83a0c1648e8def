"""The Load & Release page's NodeJS snippet with @zilliz/milvus2-sdk-node against Hotset."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the server harness needs httpx")

from .harness import Server  # noqa: E402

SNIPPET = Path(__file__).with_name("node_snippet.mjs")


@pytest.fixture(scope="module")
def sdk_dir(tmp_path_factory):
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node/npm are not installed here: the Node SDK test needs Node.js 18+")
    d = tmp_path_factory.mktemp("node-sdk")
    (d / "package.json").write_text(json.dumps({"name": "hotset-node-test", "version": "1.0.0",
                                                "private": True}))
    out = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                          "@zilliz/milvus2-sdk-node"], cwd=d, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        pytest.skip(f"npm could not install @zilliz/milvus2-sdk-node: {out.stderr[-500:]}")
    shutil.copy(SNIPPET, d / "snippet.mjs")
    return d


def test_node_sdk_loads_reads_state_and_releases(sdk_dir, tmp_path):
    s = Server(tmp_path / "d", "--token", "root:Milvus")
    try:
        out = subprocess.run(["node", "snippet.mjs"], cwd=sdk_dir, capture_output=True,
                             text=True, timeout=300,
                             env={**os.environ, "MILVUS_ADDRESS": f"127.0.0.1:{s.port}"})
    finally:
        s.stop()
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines == ["create Success 0", "index Success", "load Success",
                     "state LoadStateLoaded", "release Success", "state LoadStateNotLoad"]

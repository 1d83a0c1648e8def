"""Real client stacks against a server started here: langchain-milvus and llama-index's
MilvusVectorStore (each in its own environment: they need different pymilvus majors),
pymilvus's iterators through pymilvus 2.6 and 3.0, and the Node SDK. ``make test``
builds the environments (``make ecosystem``); run on its own, a test whose environment is
missing fails and says how to build it, and the Node test skips without ``node``."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..engine.server.harness import ROOT, Server

HERE = Path(__file__).parent
ENVS = {"langchain": ROOT / ".venv-eco-langchain", "llamaindex": ROOT / ".venv-eco-llamaindex"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("eco") / "data")
    yield s
    s.stop()


def _python_of(env: str) -> str:
    py = ENVS[env] / "bin" / "python"
    if not py.exists():
        pytest.fail(f"{ENVS[env]} is missing: run `make ecosystem` (make test does)")
    return str(py)


def _run(cmd: list[str], cwd: Path = HERE) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_langchain_milvus(server):
    assert "langchain ok" in _run([_python_of("langchain"), "langchain_flow.py",
                                   server.url])


def test_llama_index_milvus_vector_store(server):
    assert "llama-index ok" in _run([_python_of("llamaindex"), "llamaindex_flow.py",
                                     server.url])


@pytest.mark.parametrize("env", ["llamaindex", "project"])
def test_iterators_return_every_row_once(server, env):
    py = sys.executable if env == "project" else _python_of(env)
    version = _run([py, "-c", "import pymilvus; print(pymilvus.__version__)"]).strip()
    assert version.startswith("2.6" if env == "llamaindex" else "3."), version
    assert "iterators ok" in _run([py, "iterators_flow.py", server.url])


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_node_sdk_load_and_release(server):
    node = HERE / "node"
    if not (node / "node_modules" / "@zilliz").exists():
        pytest.fail("the Node SDK is not installed: run `make ecosystem` (make test does)")
    assert "node ok" in _run(["node", "flow.mjs", f"127.0.0.1:{server.port}"], cwd=node)

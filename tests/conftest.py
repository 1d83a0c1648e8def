"""Shared fixtures. ``device`` runs a test on the CPU and, marked ``gpu``, on CUDA."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():  # CPU machines run Triton kernels through its interpreter;
    os.environ.setdefault("TRITON_INTERPRET", "1")  # set before anything imports triton
# the kernel dispatch's defaults, not a crossover table this machine measured earlier
os.environ["HOTSET_KERNEL_TABLE"] = os.path.join(tempfile.mkdtemp(prefix="hotset-kt-"),
                                                 "kernels.json")

from engine import DataType, MilvusClient  # noqa: E402


def _cuda_param():
    return pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs CUDA")])


@pytest.fixture(params=["cpu", _cuda_param()])
def device(request) -> str:
    return request.param


@pytest.fixture
def client(tmp_path, device):
    c = MilvusClient(str(tmp_path / "data"), device=device)
    yield c
    c.close()


@pytest.fixture
def cpu_client(tmp_path):
    c = MilvusClient(str(tmp_path / "data"), device="cpu")
    yield c
    c.close()


def basic_schema(dim: int = 8, dynamic: bool = True, auto_id: bool = False):
    s = MilvusClient.create_schema(auto_id=auto_id, enable_dynamic_field=dynamic)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=32)
    s.add_field("score", DataType.DOUBLE)
    s.add_field("age", DataType.INT32)
    return s


def index_params(field: str = "vec", metric: str = "L2"):
    p = MilvusClient.prepare_index_params()
    p.add_index(field, "FLAT", metric_type=metric)
    return p


def basic_rows(n: int, dim: int = 8, start: int = 0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    return [{"id": start + i, "vec": vecs[i].tolist(), "title": f"t{(start + i) % 7}",
             "score": float((start + i) % 10) / 2, "age": (start + i) % 50,
             "color": ["red", "green", "blue"][(start + i) % 3]} for i in range(n)]


def make_loaded(client, name: str = "c", n: int = 100, dim: int = 8, metric: str = "L2",
                flush: bool = False) -> list[dict]:
    client.create_collection(name, schema=basic_schema(dim), index_params=index_params(metric=metric))
    rows = basic_rows(n, dim)
    client.insert(name, rows)
    if flush:
        client.flush(name)
    return rows


def column_file(client, collection: str, column: str) -> str:
    """The file name of ``column`` inside a segment folder of ``collection``."""
    coll = client._db.collections[collection]
    f = coll.schema.field(column)
    fixed = f is not None and f.is_fixed
    return coll.stems[column] + (".safetensors" if fixed else ".arrow")


def reindex(client, name: str, index_type: str = "IVF_FLAT", nlist: int = 4,
            field: str = "vec") -> None:
    """Replace the (released) collection's vector index with ``index_type``."""
    p = MilvusClient.prepare_index_params()
    p.add_index(field, index_type, metric_type="L2",
                params={"nlist": nlist} if index_type == "IVF_FLAT" else {})
    client.drop_index(name, field)
    client.create_index(name, p)

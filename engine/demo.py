"""The Load & Release scenario of the Milvus docs, end to end on a local data directory."""
from __future__ import annotations

import time

import numpy as np

from . import DataType, MilvusClient
from .errors import MilvusException

COLLECTION = "demo_load_release"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _show_memory(client: MilvusClient, when: str) -> None:
    info = client.memory_info()
    print(f"memory_info() {when}: device={info['device']} used={_mib(info['used_bytes'])} "
          f"of {_mib(info['capacity_bytes'])}")
    for name, entry in info["collections"].items():
        parts = ", ".join(f"{p}={_mib(b)}" for p, b in sorted(entry["parts"].items()))
        print(f"  {name}: {_mib(entry['bytes'])} ({parts})")


def run(data: str = "./data", device: str = "auto", rows: int = 20_000, dim: int = 768) -> None:
    client = MilvusClient(uri=data, device=device)
    print(f"data directory {data}, device {client.device}")
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(field_name="my_id", datatype=DataType.INT64, is_primary=True)
    schema.add_field(field_name="my_vector", datatype=DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(field_name="my_varchar", datatype=DataType.VARCHAR, max_length=512)
    client.create_collection(collection_name=COLLECTION, schema=schema)
    print(client.get_load_state(collection_name=COLLECTION))

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((rows, dim), dtype=np.float32)
    t0 = time.perf_counter()
    for start in range(0, rows, 5_000):  # columnar batches: no per-row Python
        stop = min(start + 5_000, rows)
        client.insert(COLLECTION, {
            "my_id": np.arange(start, stop),
            "my_vector": vectors[start:stop],
            "my_varchar": [f"item {i}" for i in range(start, stop)],
            "color": [["red", "green", "blue"][i % 3] for i in range(start, stop)],
        })
    client.flush(COLLECTION)
    print(f"inserted and flushed {rows} rows in {time.perf_counter() - t0:.2f} s")

    index_params = MilvusClient.prepare_index_params()
    index_params.add_index(field_name="my_vector", index_type="AUTOINDEX", metric_type="L2")
    client.create_index(collection_name=COLLECTION, index_params=index_params)

    t0 = time.perf_counter()
    client.load_collection(collection_name=COLLECTION)
    print(f"load_collection: {time.perf_counter() - t0:.3f} s")
    print(client.get_load_state(collection_name=COLLECTION))
    _show_memory(client, "after load")

    hits = client.search(COLLECTION, data=vectors[:2], limit=3,
                         output_fields=["my_varchar", "color"])
    for i, hit_list in enumerate(hits):
        print(f"query {i}: " + ", ".join(
            f"my_id={h['my_id']} distance={h['distance']:.2f} {h['entity']}" for h in hit_list))

    try:
        client.load_collection(COLLECTION, load_fields=["my_id", "my_vector"])
    except MilvusException as e:
        print(f"changing load_fields while loaded -> code {e.code}: {e.message}")
    client.release_collection(collection_name=COLLECTION)
    client.load_collection(COLLECTION, load_fields=["my_id", "my_vector"],
                           skip_load_dynamic_field=True)
    print("loaded specific fields:", client.get_load_state(collection_name=COLLECTION))
    _show_memory(client, "after partial load (my_varchar and $meta not resident)")

    client.release_collection(collection_name=COLLECTION)
    print(client.get_load_state(collection_name=COLLECTION))
    _show_memory(client, "after release")
    client.close()

"""pymilvus's query_iterator and search_iterator against a Hotset server, on a FLAT and an
IVF_FLAT collection: every row exactly once. Run with the pymilvus of the environment it
is started in (2.6 in the llama-index one, 3.0 in the project's), the server's URI as the
only argument."""
from __future__ import annotations

import sys

import numpy as np
from pymilvus import DataType, MilvusClient

uri = sys.argv[1]
c = MilvusClient(uri=uri)
N, DIM = 1000, 16
rng = np.random.default_rng(0)
vecs = rng.standard_normal((N, DIM)).astype(np.float32)
for index_type, params in (("FLAT", {}), ("IVF_FLAT", {"nlist": 16})):
    name = f"it_{index_type.lower()}"
    if c.has_collection(name):
        c.drop_collection(name)
    s = c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.INT64)
    p = c.prepare_index_params()
    p.add_index("vec", index_type=index_type, metric_type="L2", params=params)
    c.create_collection(name, schema=s, index_params=p)
    ids = rng.permutation(N * 3)[:N].tolist()  # keys not in insertion order
    rows = [{"id": k, "vec": vecs[i].tolist(), "tag": i % 4} for i, k in enumerate(ids)]
    for start in range(0, N, 250):
        c.insert(name, rows[start:start + 250])
    c.flush(name)
    c.release_collection(name)
    if index_type == "IVF_FLAT":  # rebuild so the sealed rows are in list order
        c.drop_index(name, "vec")
        c.create_index(name, p)
    c.load_collection(name)

    it = c.query_iterator(name, batch_size=37, filter="tag >= 0", output_fields=["tag"])
    seen = []
    while True:
        page = it.next()
        if not page:
            it.close()
            break
        seen += [r["id"] for r in page]
    assert len(seen) == N and set(seen) == set(ids), (index_type, len(seen), len(set(seen)))

    it = c.search_iterator(name, data=[vecs[0].tolist()], batch_size=50, limit=300,
                           anns_field="vec", search_params={"metric_type": "L2",
                                                            "params": {"nprobe": 16}})
    got = []
    while True:
        page = it.next()
        if not page:
            it.close()
            break
        got += [h["id"] for h in page]
    assert len(got) == 300 and len(set(got)) == 300, (index_type, len(got), len(set(got)))
    d = ((vecs - vecs[0]) ** 2).sum(1)
    want = {ids[i] for i in np.argsort(d)[:300]}
    assert len(want & set(got)) >= 295, (index_type, len(want & set(got)))  # ties at the edge
print("iterators ok")

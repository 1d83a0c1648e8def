"""Child process for the crash test: insert/flush forever, logging each acknowledged batch."""
import os
import sys

import numpy as np

from engine import DataType, MilvusClient


def main(data: str, ack_path: str, batch: int) -> None:
    client = MilvusClient(data, device="cpu", segment_max_bytes=64 << 10)
    if not client.has_collection("crash"):
        s = MilvusClient.create_schema(enable_dynamic_field=True)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=16)
        s.add_field("name", DataType.VARCHAR, max_length=20)
        client.create_collection("crash", schema=s)
    ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    start = 0
    rng = np.random.default_rng(0)
    while True:
        ids = np.arange(start, start + batch)
        client.insert("crash", {"id": ids, "vec": rng.standard_normal((batch, 16)).astype("f4"),
                                "name": [f"n{i}" for i in ids.tolist()],
                                "k": ids.tolist()})
        os.write(ack, f"{start + batch - 1}\n".encode())  # acknowledged: the call returned
        start += batch
        if (start // batch) % 7 == 0:
            client.flush("crash")
        if start % (batch * 5) == 0:
            client.delete("crash", ids=[start - 1])
            os.write(ack, f"d{start - 1}\n".encode())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

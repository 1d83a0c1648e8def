"""kill -9 of a server in the middle of inserts, deletes, flushes, index builds and loads,
at 20 points: after each, the server restarts on the same directory, every acknowledged
write is there (and no acknowledged delete is undone), an insert in flight is all or
nothing, and the collection loads."""
import signal
import threading
import time

import pytest

pytest.importorskip("pymilvus", reason="the crash test drives the server with pymilvus")

from pymilvus import DataType, MilvusClient, MilvusException  # noqa: E402

from .harness import Server  # noqa: E402

POINTS = 20
OPS = ("insert", "delete", "flush", "create_index", "load")
BATCH = 40


class Driver(threading.Thread):
    """Runs the operations in a cycle; records what was acknowledged and what is in flight."""

    def __init__(self, client: MilvusClient, next_id: int, live: set[int]) -> None:
        super().__init__(daemon=True)
        self.c, self.next_id, self.live = client, next_id, live
        self.acked_ins: set[int] = set()
        self.acked_del: set[int] = set()
        self.inflight: tuple[str, set[int]] = ("", set())
        self.started = {op: threading.Event() for op in OPS}
        self.stop = False

    def run(self) -> None:
        try:
            while not self.stop:
                for op in OPS:
                    self.started[op].set()
                    getattr(self, op)()
        except Exception:  # noqa: BLE001 - the server was killed under us
            pass

    def insert(self) -> None:
        ids = set(range(self.next_id, self.next_id + BATCH))
        self.inflight = ("insert", ids)
        self.c.insert("k", [{"id": i, "vec": [float(i % 13), 1.0, 2.0, float(i % 7)]}
                            for i in sorted(ids)])
        self.acked_ins |= ids
        self.live |= ids
        self.next_id += BATCH
        self.inflight = ("", set())

    def delete(self) -> None:
        ids = set(sorted(self.live)[:3])
        self.inflight = ("delete", ids)
        self.c.delete("k", ids=sorted(ids))
        self.acked_del |= ids
        self.live -= ids
        self.inflight = ("", set())

    def flush(self) -> None:
        self.c.flush("k")

    def create_index(self) -> None:
        self.c.release_collection("k")
        self.c.drop_index("k", "vec")
        p = MilvusClient.prepare_index_params()
        p.add_index("vec", "IVF_FLAT", metric_type="L2", params={"nlist": 8})
        self.c.create_index("k", p)

    def load(self) -> None:
        self.c.load_collection("k")
        while self.c.get_load_state("k")["state"].name != "Loaded":
            time.sleep(0.01)


def _open(srv: Server) -> MilvusClient:
    c = MilvusClient(uri=srv.url)
    if not c.has_collection("k"):
        s = MilvusClient.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        p = MilvusClient.prepare_index_params()
        p.add_index("vec", "FLAT", metric_type="L2")
        c.create_collection("k", schema=s, index_params=p)
    return c


def _loaded_ids(c: MilvusClient) -> set[int]:
    deadline = time.time() + 60
    while c.get_load_state("k")["state"].name == "Loading" and time.time() < deadline:
        time.sleep(0.02)
    if c.get_load_state("k")["state"].name != "Loaded":
        if not c.list_indexes("k"):
            p = MilvusClient.prepare_index_params()
            p.add_index("vec", "FLAT", metric_type="L2")
            c.create_index("k", p)
        c.load_collection("k")
    return {r["id"] for r in c.query("k", "id >= 0", output_fields=["id"])}


def test_kill_9_at_20_points_loses_no_acknowledged_write(tmp_path):
    data = tmp_path / "d"
    acked_del: set[int] = set()
    d = None
    for point in range(POINTS + 1):
        srv = Server(data)
        c = _open(srv)
        got = _loaded_ids(c)
        if d is not None:  # check the run killed at the previous point
            kind, ids = d.inflight
            must = d.live - (ids if kind == "delete" else set())
            may = d.live | (ids if kind == "insert" else set())
            assert must <= got <= may, (point, sorted(must - got)[:5], sorted(got - may)[:5])
            assert not (got & acked_del)
            if kind == "insert":
                assert len(got & ids) in (0, len(ids)), (point, "an insert landed half")
        if point == POINTS:
            c.close()
            srv.stop()
            break
        d = Driver(c, d.next_id + BATCH if d else 0, got)
        d.start()
        op = OPS[point % len(OPS)]
        assert d.started[op].wait(60), op
        time.sleep(0.002 * (point // len(OPS)))  # land a little later into the op each round
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        d.stop = True
        d.join(30)
        acked_del |= d.acked_del
        srv.http.close()
        srv.proc.stdout.close()
        c.close()

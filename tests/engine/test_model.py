"""The client against a plain-Python model of a collection, driven by hypothesis through
random sequences of writes, seals, loads (in the background too, with partitions released
while they copy), releases, index rebuilds and reopens under memory limits small enough
that some loads and seals meet 1400: every search, query and get must agree with the model
(search by brute force over the model's live rows), and after every step the allocator
holds exactly the resident parts, with nothing left reserved."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import DataType, LoadState, MilvusClient
from engine.errors import InsufficientMemory

DIM = 4
NLIST = 4
SEAL_BYTES = 2_000  # a few dozen rows per sealed segment: seals happen on their own
# None: the machine's; the others are small enough that some loads, inserts and seals do
# not fit (a growing buffer alone takes 1024 rows of capacity, about 40 kB here).
LIMITS = [None, None, 36_000, 45_000]


def _schema():
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("title", DataType.VARCHAR, max_length=16)
    s.add_field("age", DataType.INT64)
    return s


class CollectionModel(RuleBasedStateMachine):
    index_type = "FLAT"
    device = "cpu"

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="hotset-model-")
        self.rows: dict[int, tuple[np.ndarray, str, int, str]] = {}  # pk -> (vec, title,
        # age, partition)
        self.next_pk = 0
        self.rng = np.random.default_rng(0)
        self.loaded = True
        self.parts = {"_default", "p1"}  # the loaded partitions, when loaded
        self.limit = None
        self.client = self._open()
        p = MilvusClient.prepare_index_params()
        p.add_index("vec", self.index_type, metric_type="L2",
                    params={"nlist": NLIST} if self.index_type == "IVF_FLAT" else {})
        self.client.create_collection("c", schema=_schema(), index_params=p)
        self.client.create_partition("c", "p1")
        if self.client.get_load_state("c")["state"] != LoadState.Loaded:
            self.client.load_collection("c")

    def _open(self) -> MilvusClient:
        return MilvusClient(self.root, device=self.device, segment_max_bytes=SEAL_BYTES,
                            memory_limit=self.limit)

    def _check_still_loaded(self) -> None:
        """A write whose rows or seal did not fit on the device (1400) leaves the
        collection either loaded and right (reloaded from disk) or NotLoad with the error
        kept; never loaded and stale."""
        if self.loaded and self.client.get_load_state("c")["state"] == LoadState.NotLoad:
            err = self.client.take_load_error("c")
            assert err is not None and err.code == 1400, err
            self.loaded = False

    def teardown(self) -> None:
        self.client.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _visible(self):
        """The model's rows a read sees: those in loaded partitions."""
        return {p: r for p, r in self.rows.items() if r[3] in self.parts}

    def _new_rows(self, pks: list[int], age: int, part: str = "_default") -> list[dict]:
        vecs = self.rng.standard_normal((len(pks), DIM)).astype(np.float32)
        out = []
        for pk, v in zip(pks, vecs):
            title = f"t{pk % 5}-{age}"
            self.rows[pk] = (v, title, age, part)
            out.append({"id": pk, "vec": v.tolist(), "title": title, "age": age})
        return out

    # -- writes ---------------------------------------------------------------------------
    @rule(n=st.integers(1, 30), age=st.integers(0, 9), part=st.sampled_from(["", "p1"]))
    def insert(self, n, age, part):
        pks = list(range(self.next_pk, self.next_pk + n))
        self.next_pk += n
        before = dict(self.rows)
        rows = self._new_rows(pks, age, part or "_default")
        try:
            assert self.client.insert("c", rows, partition_name=part)["insert_count"] == n
        except InsufficientMemory:  # refused before anything was written
            self.rows = before
        self._check_still_loaded()

    @precondition(lambda self: self.next_pk > 0)
    @rule(data=st.data(), age=st.integers(0, 9))
    def upsert(self, data, age):
        pks = sorted(set(data.draw(st.lists(st.integers(0, self.next_pk + 3), min_size=1,
                                            max_size=8))))
        pks = [p for p in pks if self.rows.get(p, "_default")[-1] == "_default"]  # not p1's
        if not pks:
            return
        self.next_pk = max(self.next_pk, pks[-1] + 1)
        before = dict(self.rows)
        try:
            got = self.client.upsert("c", self._new_rows(pks, age))["upsert_count"]
            assert got == len(pks)
        except InsufficientMemory:  # refused before anything was written
            self.rows = before
        self._check_still_loaded()

    @precondition(lambda self: self.next_pk > 0)
    @rule(data=st.data())
    def delete_ids(self, data):
        pks = data.draw(st.lists(st.integers(0, self.next_pk), max_size=6))
        gone = {p for p in pks if p in self.rows}
        res = self.client.delete("c", ids=pks)
        assert res["delete_count"] == len(gone)
        for p in gone:
            del self.rows[p]

    @rule(age=st.integers(0, 9))
    def delete_filter(self, age):
        gone = [p for p, r in self.rows.items() if r[2] == age]
        assert self.client.delete("c", filter=f"age == {age}")["delete_count"] == len(gone)
        if not self.loaded:  # evaluated on a transient copy: nothing became resident
            assert self.client.memory_info("c") == {"bytes": 0, "parts": {}}
        for p in gone:
            del self.rows[p]

    @rule()
    def flush(self):
        self.client.flush("c")
        self._check_still_loaded()

    @precondition(lambda self: self.loaded)
    @rule(fraction=st.floats(0.02, 1.0))
    def flush_under_pressure(self, fraction):
        """Seal while the device has less room than the collection holds (as when another
        process took memory): moving the sealed rows may meet 1400, and the copy is then
        reloaded or left NotLoad, never stale."""
        alloc = self.client.allocator
        capacity = alloc.capacity
        alloc.capacity = int(alloc.used_bytes * fraction)
        try:
            self.client.flush("c")
        finally:
            alloc.capacity = capacity
        self._check_still_loaded()

    # -- load state -----------------------------------------------------------------------
    @precondition(lambda self: self.loaded)
    @rule()
    def release(self):
        self.client.release_collection("c")
        self.loaded = False
        assert self.client.memory_info("c") == {"bytes": 0, "parts": {}}

    @precondition(lambda self: not self.loaded)
    @rule(only_default=st.booleans())
    def load(self, only_default):
        try:
            if only_default:
                self.client.load_partitions("c", ["_default"])
                self.parts = {"_default"}
            else:
                self.client.load_collection("c")
                self.parts = {"_default", "p1"}
        except InsufficientMemory:
            assert self.client.get_load_state("c") == {"state": LoadState.NotLoad}
            assert self.client.memory_info("c") == {"bytes": 0, "parts": {}}
            return
        self.loaded = True

    @precondition(lambda self: self.loaded and self.parts == {"_default"})
    @rule()
    def load_more(self):
        """Expanding a load is all or nothing: refused, what was loaded stays loaded."""
        try:
            self.client.load_partitions("c", ["p1"])
        except InsufficientMemory:
            assert self.client.get_load_state("c", "_default") == {"state": LoadState.Loaded}
            return
        self.parts = {"_default", "p1"}

    @precondition(lambda self: not self.loaded)
    @rule(release_p1=st.booleans())
    def load_in_background(self, release_p1):
        """A background load (``_async``), with p1 released while its segments copy: the
        released partition's rows must not stay resident, counted or searchable."""
        loader = self.client._db.residency.loader
        gate = threading.Event()
        real = loader._load_sealed

        def gated(*args, **kwargs):
            gate.wait(30)
            return real(*args, **kwargs)

        loader._load_sealed = gated
        try:
            try:
                self.client.load_collection("c", _async=True)
            except InsufficientMemory:  # does not fit: refused up front, nothing changed
                assert self.client.get_load_state("c") == {"state": LoadState.NotLoad}
                return
            if release_p1:
                self.client.release_partitions("c", ["p1"])
        finally:
            gate.set()
            del loader._load_sealed
        while self.client.get_load_state("c")["state"] == LoadState.Loading:
            threading.Event().wait(0.005)
        assert self.client.get_load_state("c") == {"state": LoadState.Loaded}
        self.loaded = True
        self.parts = {"_default"} if release_p1 else {"_default", "p1"}
        if release_p1:
            owners = self.client.allocator._bytes
            assert not [o for o in owners if o.collection == "c" and o.partition == "p1"]

    @precondition(lambda self: not self.loaded)
    @rule(nlist=st.integers(2, 8))
    def reindex(self, nlist):
        """drop_index then create_index again (an IVF index with another nlist): the rows
        must be laid out again with the new centroids, or searches go wrong."""
        self.client.drop_index("c", "vec")
        p = MilvusClient.prepare_index_params()
        p.add_index("vec", self.index_type, metric_type="L2",
                    params={"nlist": nlist} if self.index_type == "IVF_FLAT" else {})
        self.client.create_index("c", p)

    @rule(limit=st.sampled_from(LIMITS))
    def reopen(self, limit):
        """Reopen, with another memory limit: a loaded collection is restored in the
        background; one that does not fit stays NotLoad with the error kept."""
        self.client.close()
        self.limit = limit
        self.client = self._open()
        while self.client.get_load_state("c")["state"] == LoadState.Loading:
            threading.Event().wait(0.005)
        if self.loaded and self.client.get_load_state("c")["state"] == LoadState.NotLoad:
            err = self.client.take_load_error("c")
            assert err is not None and err.code == 1400, err
            self.loaded = False
        assert self.client.get_load_state("c")["state"] == (
            LoadState.Loaded if self.loaded else LoadState.NotLoad)

    # -- reads ----------------------------------------------------------------------------
    @precondition(lambda self: self.loaded)
    @rule(k=st.integers(1, 12), nq=st.integers(1, 3), min_age=st.integers(0, 10))
    def search(self, k, nq, min_age):
        q = self.rng.standard_normal((nq, DIM)).astype(np.float32)
        sp = {"params": {"nprobe": 65536}}  # every list (nprobe is capped at nlist): exact
        hits = self.client.search("c", q, limit=k, filter=f"age >= {min_age}",
                                  output_fields=["title"], search_params=sp)
        live = [(p, r[0]) for p, r in self._visible().items() if r[2] >= min_age]
        assert len(hits) == nq
        for qi in range(nq):
            want = sorted((float(((v - q[qi]) ** 2).sum()), p) for p, v in live)[:k]
            got = hits[qi]
            assert len(got) == len(want)
            for h, (dist, _) in zip(got, want):  # tie-tolerant: compare distances
                assert h["distance"] == pytest.approx(dist, rel=1e-4, abs=1e-4)
                assert h["entity"]["title"] == self.rows[h["id"]][1]
            assert len({h["id"] for h in got}) == len(got)

    @precondition(lambda self: self.loaded)
    @rule(min_age=st.integers(0, 10))
    def count(self, min_age):
        n = sum(1 for r in self._visible().values() if r[2] >= min_age)
        got = self.client.query("c", f"age >= {min_age}", output_fields=["count(*)"])
        assert got == [{"count(*)": n}]

    @precondition(lambda self: self.loaded and self.next_pk > 0)
    @rule(data=st.data())
    def get(self, data):
        pks = data.draw(st.lists(st.integers(0, self.next_pk), min_size=1, max_size=6,
                                 unique=True))
        got = {r["id"]: r for r in self.client.get("c", pks, output_fields=["title", "age"])}
        assert set(got) == {p for p in pks if p in self._visible()}
        for p, r in got.items():
            assert (r["title"], r["age"]) == self.rows[p][1:3]

    @invariant()
    def row_count_is_live_rows(self):
        assert self.client.get_collection_stats("c") == {"row_count": len(self.rows)}

    @invariant()
    def allocator_counts_exactly_what_is_resident(self):
        """used_bytes is the resident parts plus open reservations, and no load runs
        between steps, so nothing is reserved."""
        info = self.client.memory_info()
        resident = sum(c["bytes"] for c in info["collections"].values())
        assert info["used_bytes"] == resident + info["reserved_bytes"]
        assert info["reserved_bytes"] == 0
        if not self.loaded:
            assert self.client.memory_info("c") == {"bytes": 0, "parts": {}}


class IvfCollectionModel(CollectionModel):
    index_type = "IVF_FLAT"


class CudaIvfCollectionModel(IvfCollectionModel):
    device = "cuda"


_SETTINGS = settings(max_examples=int(os.environ.get("HOTSET_MODEL_EXAMPLES", 100)),
                     stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
TestFlatModel = CollectionModel.TestCase
TestFlatModel.settings = _SETTINGS
TestIvfModel = IvfCollectionModel.TestCase
TestIvfModel.settings = _SETTINGS
TestCudaIvfModel = pytest.mark.gpu(pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA")(CudaIvfCollectionModel.TestCase))
TestCudaIvfModel.settings = _SETTINGS

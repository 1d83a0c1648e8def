"""The device allocator on its own: reservations as handles, exact accounting, 1400 that
changes nothing, and (property) its invariant over random sequences of operations."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.allocator import DeviceAllocator, Owner
from engine.errors import InsufficientMemory

CPU = torch.device("cpu")


def _t(nbytes: int) -> torch.Tensor:
    return torch.zeros(nbytes, dtype=torch.uint8)


def _owner(part: str = "vec", collection: str = "c", partition: str = "_default",
           segment: str = "1") -> Owner:
    return Owner(collection, partition, segment, part)


def test_a_reservation_is_a_handle_drawn_down_by_registrations_and_closed():
    a = DeviceAllocator(CPU, 1000)
    with a.reserve(600, "load of c") as r:
        assert (a.used_bytes, a.reserved_bytes, a.free_bytes) == (600, 600, 400)
        r.register(_owner("vec"), _t(250))
        assert (r.remaining, a.used_bytes, a.registered_bytes) == (350, 600, 250)
        r.register(_owner("pk"), _t(100))
        assert r.remaining == 250 and a.used_bytes == 600
    assert r.closed and a.reserved_bytes == 0 and a.used_bytes == 350  # remainder returned
    r.register(_owner("norms"), _t(40))  # a closed handle draws from the free bytes
    assert a.used_bytes == 390 and r.remaining == 0


def test_growth_beyond_the_reservation_comes_from_the_free_bytes():
    a = DeviceAllocator(CPU, 1000)
    r = a.reserve(100, "x")
    r.register(_owner(), _t(300))  # 100 drawn from the reservation, 200 from free
    assert (r.remaining, a.used_bytes) == (0, 300)
    r.close()
    assert a.used_bytes == 300


def test_running_out_is_1400_and_changes_nothing():
    a = DeviceAllocator(CPU, 1000)
    a.register(_owner("pk"), _t(700))
    with pytest.raises(InsufficientMemory) as e:
        a.reserve(400, "load of d")
    assert e.value.code == 1400 and "load of d" in e.value.message
    assert a.used_bytes == 700 and a.reserved_bytes == 0
    r = a.reserve(200, "y")
    with pytest.raises(InsufficientMemory):
        r.register(_owner("vec"), _t(350))  # 200 reserved + 100 free < 350
    assert a.held(_owner("vec")) == 0 and r.remaining == 200 and a.used_bytes == 900
    r.close()


def test_registering_again_replaces_and_free_forgets_by_scope():
    a = DeviceAllocator(CPU, 10_000)
    a.register(_owner("vec", segment="1"), _t(100))
    a.register(_owner("vec", segment="1"), _t(40))  # replaced: a shrink gives bytes back
    a.register(_owner("vec", segment="2"), _t(60))
    a.register(_owner("vec", partition="p1", segment="3"), _t(10))
    a.register(_owner("vec", collection="d"), _t(5))
    assert a.collection_info("c") == {"bytes": 110, "parts": {"vec": 110}}
    a.free("c", segment="2")
    assert a.collection_info("c")["bytes"] == 50
    a.free("c", partition="p1")
    assert a.collection_info("c")["bytes"] == 40
    a.free("c")
    assert a.collection_info("c") == {"bytes": 0, "parts": {}}
    assert a.used_bytes == 5


def test_arrow_columns_are_host_parts_on_a_cuda_device():
    import pyarrow as pa

    a = DeviceAllocator(torch.device("cuda"), 1000)  # accounting only: nothing is copied
    col = pa.array(["abc"] * 10)
    a.register(_owner("title"), col)
    a.register(_owner("vec"), _t(100))
    info = a.collection_info("c")
    assert info["bytes"] == 100 and info["host_parts"] == {"title": col.nbytes}
    assert a.used_bytes == 100


_OPS = st.lists(st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 400)),
    st.tuples(st.just("register"), st.integers(0, 5), st.integers(0, 300), st.booleans()),
    st.tuples(st.just("close"), st.integers(0, 5)),
    st.tuples(st.just("free"), st.integers(0, 5)),
), max_size=40)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_used_is_always_registered_plus_open_reservations(ops):
    a = DeviceAllocator(CPU, 1000)
    handles, model = [], {}
    for op in ops:
        try:
            if op[0] == "reserve":
                handles.append(a.reserve(op[1], "p"))
            elif op[0] == "register":
                _, i, n, through = op
                r = handles[i % len(handles)] if through and handles else None
                (r or a).register(_owner(str(i)), _t(n))
                model[str(i)] = n
            elif op[0] == "close" and handles:
                handles.pop(op[1] % len(handles)).close()
            elif op[0] == "free":
                a.free("c", part=str(op[1]))
                model.pop(str(op[1]), None)
        except InsufficientMemory:
            pass
        open_bytes = sum(h.remaining for h in handles)
        assert a.reserved_bytes == open_bytes
        assert a.registered_bytes == sum(model.values())
        assert a.used_bytes == sum(model.values()) + open_bytes
        assert a.used_bytes <= a.capacity
    for h in handles:
        h.close()
    assert a.reserved_bytes == 0


def test_tensors_registered_as_host_are_host_parts_on_a_cuda_device():
    a = DeviceAllocator(torch.device("cuda"), 1000)  # accounting only: nothing is copied
    a.register(_owner("vec"), _t(100), host=True)   # a quantised index's refine rows
    a.register(_owner("vec/codes"), _t(40))
    info = a.collection_info("c")
    assert info["parts"] == {"vec/codes": 40}
    assert info["host_parts"] == {"vec": 100} and a.used_bytes == 40
    cpu = DeviceAllocator(torch.device("cpu"), 1000)  # host memory is the CPU device's
    cpu.register(_owner("vec"), _t(100), host=True)
    assert cpu.used_bytes == 100 and "host_parts" not in cpu.collection_info("c")

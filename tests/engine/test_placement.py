"""engine/placement.py: every copy placed on distinct workers with room, balanced by
bytes, or a 1400 for the whole load naming every worker's free bytes (property tests)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InsufficientMemory, ParamError
from engine.placement import place

sizes_st = st.dictionaries(st.integers(1, 200), st.integers(0, 1000), max_size=30)


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_st, free=st.lists(st.integers(0, 6000), min_size=1, max_size=5),
       replicas=st.integers(1, 3), planned=st.lists(st.integers(0, 500), min_size=5,
                                                    max_size=5))
def test_copies_fit_on_distinct_workers_or_nothing_is_placed(sizes, free, replicas, planned):
    planned = planned[:len(free)]
    names = [f"w{i}" for i in range(len(free))]
    if replicas > len(free):
        with pytest.raises(ParamError, match="needs that many workers"):
            place(sizes, free, replicas, planned, names)
        return
    try:
        out = place(sizes, free, replicas, planned, names)
    except InsufficientMemory as e:
        assert e.needed == sum(planned) + replicas * sum(sizes.values())
        if len(free) > 1:
            assert all(f"w{i} {f} bytes free" in e.message for i, f in enumerate(free))
        return
    assert set(out) == set(sizes)
    load = list(planned)
    for seg, where in out.items():
        assert len(where) == replicas == len(set(where))
        for w in where:
            load[w] += sizes[seg]
    assert all(used <= f for used, f in zip(load, free))


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_st, workers=st.integers(1, 6))
def test_balanced_within_the_largest_segment_when_room_is_ample(sizes, workers):
    out = place(sizes, [10**9] * workers)
    load = [0] * workers
    for seg, (w,) in out.items():
        load[w] += sizes[seg]
    assert max(load) - min(load) <= max(sizes.values(), default=0)


def test_one_worker_reads_as_one_device():
    with pytest.raises(InsufficientMemory) as e:
        place({1: 600, 2: 600}, [1000], names=["cuda:0"], what="collection c")
    assert e.value.needed == 1200 and e.value.free == 1000
    assert "on cuda:0 to load collection c" in e.value.message


def test_largest_first_each_to_the_least_loaded():
    assert place({1: 10, 2: 50, 3: 30, 4: 20}, [100, 100]) == {2: (0,), 3: (1,), 4: (1,),
                                                               1: (0,)}
    assert place({1: 10}, [100, 100, 100], replicas=2, planned=[5, 0, 0]) == {1: (1, 2)}

import threading
import time

import numpy as np

from engine.locks import RWLock

from .test_client import basic_rows, make_loaded


def test_readers_share_writers_exclude():
    lock = RWLock()
    order = []
    met = threading.Barrier(4, timeout=10)
    broken = []

    def reader():
        with lock.read():
            try:  # all four must be inside at once to pass the barrier
                met.wait()
            except threading.BrokenBarrierError:
                broken.append(1)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not broken  # readers overlapped

    def writer(tag):
        with lock:
            order.append(f"{tag}+")
            time.sleep(0.02)
            order.append(f"{tag}-")

    ws = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    assert all(order[i][:-1] == order[i + 1][:-1] for i in range(0, 6, 2))  # never interleaved


def test_write_side_is_reentrant_and_can_read():
    lock = RWLock()
    with lock:
        with lock:
            with lock.read():
                assert lock.acquire(timeout=0.01)
                lock.release()
    assert lock.acquire(blocking=False)
    lock.release()


def test_timeout_while_a_reader_holds_it():
    lock = RWLock()
    got = []
    with lock.read():
        t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
        t.start()
        t.join()
    assert got == [False]


def _until(cond, limit: float = 10.0) -> None:
    """Wait for a state of the lock (an event), not for a length of time."""
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "the lock never reached the awaited state"
        time.sleep(0.001)


def _hammer(lock, kind, stop, counts, key):
    while time.monotonic() < stop:
        if kind == "w":
            with lock:
                time.sleep(0.002)
        else:
            with lock.read():
                time.sleep(0.002)
        counts[key] += 1


def test_a_stream_of_writes_does_not_starve_readers_nor_reads_writers():
    """Requests are served in arrival order: with two threads writing back to back a reader
    still gets in after the writes queued before it, and with two readers overlapping all
    the time a writer still gets its turn."""
    for hogs, other in (("w", "r"), ("r", "w")):
        lock = RWLock()
        counts = {"hog0": 0, "hog1": 0, "other": 0}
        stop = time.monotonic() + 0.6
        threads = [threading.Thread(target=_hammer, args=(lock, hogs, stop, counts, f"hog{i}"))
                   for i in range(2)]
        threads.append(threading.Thread(target=_hammer, args=(lock, other, stop, counts,
                                                                "other")))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # FIFO: the lone thread waits for at most the two requests ahead of it each time
        assert counts["other"] >= min(counts["hog0"], counts["hog1"]) // 3 > 0, (hogs, counts)


def test_abandoned_wait_keeps_nothing_and_lets_the_queue_move():
    lock = RWLock()
    flag = threading.Event()
    got, entered = [], []
    with lock.read():
        t = threading.Thread(target=lambda: got.append(lock.acquire(abandon=flag.is_set)))
        t.start()
        _until(lambda: len(lock._queue) == 1)  # the writer is queued

        def reader():
            with lock.read():
                entered.append(1)

        r = threading.Thread(target=reader)
        r.start()  # queued behind the waiting writer
        _until(lambda: len(lock._queue) == 2)
        assert entered == []
        flag.set()
        t.join(1)
        r.join(1)
    assert got == [False] and entered == [1]
    assert lock.acquire(blocking=False)  # nothing left queued or held by the waits
    lock.release()


def test_concurrent_searches_and_inserts(cpu_client):
    make_loaded(cpu_client, n=200)
    q = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    errors = []

    def searcher():
        try:
            for _ in range(30):
                hits = cpu_client.search("c", q, limit=5, filter="age >= 0")
                assert all(len(h) == 5 for h in hits)
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    def inserter():
        try:
            for i in range(30):
                cpu_client.insert("c", basic_rows(10, start=1000 + 10 * i, seed=i))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(3)] + [
        threading.Thread(target=inserter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cpu_client.get_collection_stats("c") == {"row_count": 500}


def test_no_search_sees_a_half_loaded_or_half_released_collection(cpu_client):
    from engine.errors import MilvusException

    make_loaded(cpu_client, n=300, flush=True)
    q = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    outcomes, errors = [], []
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                hits = cpu_client.search("c", q, limit=5)
                outcomes.append(len(hits[0]))
            except MilvusException as e:
                if e.code != 101:  # not loaded is the only acceptable refusal
                    errors.append(e)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(15):
        cpu_client.release_collection("c")
        cpu_client.load_collection("c", _async=True)
        time.sleep(0.005)
        cpu_client.load_collection("c")  # waits for Loaded
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert outcomes and set(outcomes) == {5}  # a search that ran saw the whole collection

"""A readers-writer lock for the client: searches and queries share it, everything that
changes state takes it alone. The write side is re-entrant and has RLock's
``acquire(timeout=)`` / ``release``; a thread that holds the write side may also enter the
read side. Requests are served in arrival order: a reader waits behind every writer that
asked before it and a writer behind every earlier request, so neither a steady stream of
searches can starve a load or a release nor a steady stream of writes starve searches
(consecutive readers still share). A thread already reading may re-enter without waiting.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import Callable, Iterator

_POLL_S = 0.02  # how often a writer that may abandon its wait checks whether to


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0
        self._queue: deque[object] = deque()  # one ticket per waiting request, oldest first
        self._local = threading.local()

    def _read_depth(self) -> int:
        return getattr(self._local, "depth", 0)

    def acquire(self, blocking: bool = True, timeout: float = -1,
                abandon: Callable[[], bool] | None = None) -> bool:
        """The write side. ``abandon`` is polled while waiting (the place in the queue is
        kept); when it returns True the wait ends with False, as a timeout does."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return True
            if not blocking:
                if self._writer is None and self._readers == 0 and not self._queue:
                    self._writer, self._depth = me, 1
                    return True
                return False
            ticket = object()
            self._queue.append(ticket)
            deadline = None if timeout < 0 else time.monotonic() + timeout
            try:
                while not (self._queue[0] is ticket and self._writer is None
                           and self._readers == 0):
                    if abandon is not None and abandon():
                        return False
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    step = _POLL_S if abandon is not None else None
                    if left is not None:
                        step = left if step is None else min(step, left)
                    self._cond.wait(step)
                self._queue.popleft()
                self._writer, self._depth = me, 1
                return True
            finally:
                if self._writer != me:  # gave up: requests queued behind it may go
                    self._queue.remove(ticket)
                    self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            assert self._writer == threading.get_ident(), "release by a thread that does not hold it"
            self._depth -= 1
            if self._depth == 0:
                self._writer = None
                self._cond.notify_all()

    def __enter__(self) -> "RWLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        nested = self._read_depth() > 0
        with self._cond:
            counted = self._writer != me
            if counted:
                if not nested and (self._writer is not None or self._queue):
                    ticket = object()
                    self._queue.append(ticket)
                    self._cond.wait_for(lambda: self._queue[0] is ticket
                                        and self._writer is None)
                    self._queue.popleft()
                    self._cond.notify_all()  # a reader queued right behind may enter too
                self._readers += 1
        self._local.depth = self._read_depth() + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            if counted:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

"""A readers-writer lock for the client: searches and queries share it, everything that
changes state takes it alone. The write side is re-entrant and has RLock's
``acquire(timeout=)`` / ``release`` (the background loader uses them); a thread that holds
the write side may also enter the read side. Writers are preferred: once a writer waits,
new readers wait behind it (a thread already reading may still re-enter), so a steady
stream of searches cannot starve a load or a release."""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator


class RWLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0
        self._waiting_writers = 0
        self._local = threading.local()

    def _read_depth(self) -> int:
        return getattr(self._local, "depth", 0)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return True
            free = lambda: self._writer is None and self._readers == 0  # noqa: E731
            if not blocking:
                ok = free()
            else:
                self._waiting_writers += 1
                try:
                    ok = self._cond.wait_for(free, None if timeout < 0 else timeout)
                finally:
                    self._waiting_writers -= 1
                    if not ok:
                        self._cond.notify_all()  # readers held back by this writer may go
            if not ok:
                return False
            self._writer, self._depth = me, 1
            return True

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
                if not nested:
                    self._cond.wait_for(lambda: self._writer is None
                                        and self._waiting_writers == 0)
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

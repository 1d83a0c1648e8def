"""CUDA graphs for small searches: one query's probe and scan replayed, not re-launched.

A batch-1 IVF search is a dozen small launches (the coarse probe's matmul and top-k, the
scan's preparation, the scan, the merge, the key decoding); on a GPU each costs a few
microseconds of launch overhead, more than the work. ``Graphs.run`` runs a function of
tensors eagerly the first time a shape is seen (which also compiles its Triton kernels),
captures it in a CUDA graph the second time, and from then on copies the new inputs into
the graph's own input buffers, replays it and returns copies of its outputs.

A graph is keyed on everything that fixes its launches: a name, the constants (k, metric,
range bounds...), the inputs' shapes and dtypes, and the **held** tensors it reads in place
(the resident rows, list offsets, norms, centroids) by address. It keeps only weak
references to the held tensors: once one is freed (a release, a compaction) the graph is
dropped before its address could be reused, so a graph never reads memory that is no
longer what it captured. Held tensors changed in place are read as they are at replay.
At most ``capacity`` graphs are kept (least recently used dropped); each holds its own
small memory pool (the temporaries of one small search: tens of kilobytes), outside the
residency allocator's account, which ``clear`` returns.

The capture itself is a parameter (``capture``): ``cuda_capture`` on CUDA; tests of the
cache logic on the CPU pass a stand-in that recomputes into the same output tensors.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Capture = Callable[[Callable, list], tuple[Callable[[], None], tuple]]


def cuda_capture(fn: Callable, static: list) -> tuple[Callable[[], None], tuple]:
    """Capture ``fn(*static)`` in a CUDA graph: (replay, the graph's output tensors)."""
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # one warm-up off the default stream, as capture wants
        fn(*static)
    torch.cuda.current_stream().wait_stream(side)
    with torch.cuda.graph(graph):
        outs = fn(*static)
    return graph.replay, tuple(outs)


@dataclass(slots=True)
class _Graph:
    held: tuple                # weak references to the tensors read in place
    static: list               # the graph's input buffers (None where an input is None)
    replay: Callable[[], None]
    outs: tuple

    def alive(self) -> bool:
        return all(r() is not None for r in self.held)


class Graphs:
    def __init__(self, capacity: int = 32, capture: Capture = cuda_capture):
        self.capacity = capacity
        self._capture = capture
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self.captures = 0
        self.replays = 0

    def __len__(self) -> int:
        return len(self._graphs)

    def run(self, name: str, fn: Callable, inputs: Sequence[torch.Tensor | None],
            held: Sequence[torch.Tensor | None], consts: tuple) -> tuple:
        """``fn(*inputs)`` (a tuple of tensors), through a graph from its second call with
        the same key. ``fn`` must read ``held`` (and nothing else but ``inputs``) and must
        not synchronise with the host."""
        key = (name, consts, tuple(_shape(t) for t in inputs),
               tuple(_address(t) for t in held))
        with self._lock:  # a graph's buffers serve one search at a time
            g = self._graphs.get(key)
            if g is not None and not g.alive():
                del self._graphs[key]
                g = None
            if g is None:
                if key not in self._seen:
                    self._seen.add(key)
                    if len(self._seen) > 4 * self.capacity:
                        self._seen.clear()
                    return tuple(fn(*inputs))
                g = self._make(key, fn, inputs, held)
            self._graphs.move_to_end(key)
            for buf, t in zip(g.static, inputs):
                if buf is not None:
                    buf.copy_(t)
            g.replay()
            self.replays += 1
            return tuple(o.clone() for o in g.outs)

    def _make(self, key: tuple, fn: Callable, inputs: Sequence, held: Sequence) -> _Graph:
        for dead in [k for k, g in self._graphs.items() if not g.alive()]:
            del self._graphs[dead]
        static = [None if t is None else t.clone() for t in inputs]
        replay, outs = self._capture(fn, static)
        g = _Graph(tuple(weakref.ref(_owner(t)) for t in held if t is not None), static,
                   replay, outs)
        self._graphs[key] = g
        self.captures += 1
        while len(self._graphs) > self.capacity:
            self._graphs.popitem(last=False)
        return g

    def clear(self) -> None:
        with self._lock:
            self._graphs.clear()
            self._seen.clear()


def _shape(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (tuple(t.shape), t.dtype, t.device)


def _owner(t: torch.Tensor) -> torch.Tensor:
    """The tensor that owns a view's memory (a growing segment's rows are a view of its
    buffer): the one whose lifetime decides whether the address still holds it."""
    while t._base is not None:
        t = t._base
    return t


def _address(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (t.data_ptr(), tuple(t.shape), t.dtype, t.device)

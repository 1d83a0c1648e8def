"""A collection's manifest: what is durable about it, in one checksummed JSON file.

:class:`Manifest` is the content (schema, indexes, partitions, sealed segments, delete
files, the sequence number sealed so far, id counters and the persisted load intent) with
named mutators. :class:`ManifestFile` is its only writer: every change is made on a draft
(``change()`` or ``draft()``/``commit()``) and the draft replaces the file atomically;
only then does it become ``current``. A refused write (full disk) raises WriteFailed and
leaves ``current`` exactly as it was, so nothing needs re-reading to undo.

Segment metas and index entries stay JSON records (their on-disk form):
- segment: ``{"id", "partition", "num_rows", "sealed_seq", "bytes": {column: n},
  "files": {file name: checksums}, "ivf": vector field}`` (``ivf`` when the rows are in
  that field's index layout order);
- index: ``{"field_name", "index_name", "index_type", "metric_type", "params",
  "index_id", "engine_type", "engine_params", "trained", "checksum"}``.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import WriteFailed
from .checksum import CorruptFile, open_json, sealed_json
from .files import write_atomic

FILE = "manifest.json"
FORMAT = 2
DEFAULT_PARTITION = "_default"


@dataclass(frozen=True, slots=True)
class LoadIntent:
    """The load a collection is restored to at the next open (API.md rule 9)."""

    loaded: bool = False
    load_fields: tuple[str, ...] | None = None  # as the user gave them, sorted; None: all
    skip_dynamic: bool = False
    partitions: tuple[str, ...] | None = None   # sorted; None: every partition
    replicas: int = 1                           # copies of each sealed segment

    def to_dict(self) -> dict:
        return {"loaded": self.loaded,
                "load_fields": None if self.load_fields is None else list(self.load_fields),
                "skip_dynamic": self.skip_dynamic,
                "partitions": None if self.partitions is None else list(self.partitions),
                "replicas": self.replicas}

    @classmethod
    def from_dict(cls, d: dict) -> "LoadIntent":
        lf, parts = d.get("load_fields"), d.get("partitions")
        return cls(bool(d["loaded"]), None if lf is None else tuple(lf),
                   bool(d.get("skip_dynamic")), None if parts is None else tuple(parts),
                   int(d.get("replicas", 1)))


NOT_LOADED = LoadIntent()


@dataclass
class Manifest:
    name: str
    schema: dict
    indexes: list[dict] = field(default_factory=list)
    partitions: list[str] = field(default_factory=lambda: [DEFAULT_PARTITION])
    segments: list[dict] = field(default_factory=list)
    delete_files: list[str] = field(default_factory=list)
    delete_sums: dict[str, str] = field(default_factory=dict)
    flushed_seq: int = 0
    next_segment_id: int = 1
    next_index_id: int = 1
    load: LoadIntent = NOT_LOADED
    properties: dict = field(default_factory=dict)  # collection properties (strings)

    # -- reads --------------------------------------------------------------------------
    def segment(self, seg_id: int) -> dict:
        for s in self.segments:
            if s["id"] == seg_id:
                return s
        raise KeyError(seg_id)

    def index(self, index_name: str) -> dict | None:
        return next((d for d in self.indexes if d["index_name"] == index_name), None)

    def index_on(self, field_name: str) -> dict | None:
        return next((d for d in self.indexes if d["field_name"] == field_name), None)

    # -- named mutators (on a draft) ----------------------------------------------------
    def new_segment_id(self) -> int:
        self.next_segment_id += 1
        return self.next_segment_id - 1

    def new_index_id(self) -> int:
        self.next_index_id += 1
        return self.next_index_id - 1

    def add_segment(self, meta: dict) -> None:
        self.segments.append(meta)

    def remove_segment(self, seg_id: int) -> None:
        self.segments = [s for s in self.segments if s["id"] != seg_id]

    def add_partition(self, name: str) -> None:
        self.partitions.append(name)

    def remove_partition(self, name: str) -> list[int]:
        """Forget a partition and its segments; returns their ids."""
        gone = [s["id"] for s in self.segments if s["partition"] == name]
        self.segments = [s for s in self.segments if s["partition"] != name]
        self.partitions.remove(name)
        return gone

    def add_delete_file(self, name: str, digest: str) -> None:
        self.delete_files.append(name)
        self.delete_sums[name] = digest

    def set_flushed(self, seq: int) -> None:
        self.flushed_seq = seq

    def set_load(self, intent: LoadIntent) -> None:
        self.load = intent

    def add_index(self, entry: dict) -> None:
        self.indexes.append(entry)

    def remove_index(self, index_name: str) -> dict:
        entry = self.index(index_name)
        self.indexes = [d for d in self.indexes if d["index_name"] != index_name]
        return entry

    def set_trained(self, index_name: str, digest: str) -> None:
        entry = self.index(index_name)
        entry["trained"], entry["checksum"] = True, digest

    def clear_layout(self, field_name: str, file_name: str) -> list[int]:
        """Forget that segments store their rows in ``field_name``'s index order, and their
        layout file ``file_name``; returns those segments' ids."""
        ids = []
        for s in self.segments:
            if s.get("ivf") == field_name:
                del s["ivf"]
                s["files"].pop(file_name, None)
                ids.append(s["id"])
        return ids

    def empty_like(self, other: "Manifest") -> None:
        """Take ``other``'s indexes (untrained), partitions, id counters and load intent:
        the same collection without rows (a truncate)."""
        self.indexes = [{**{k: v for k, v in d.items() if k != "checksum"}, "trained": False}
                        for d in copy.deepcopy(other.indexes)]
        self.partitions = list(other.partitions)
        self.next_index_id = other.next_index_id
        self.next_segment_id = other.next_segment_id
        self.load = other.load
        self.properties = dict(other.properties)

    def adopt(self, other: "Manifest") -> list[dict]:
        """Take the segments ``other`` (the file on disk, written by another tool) lists and
        this manifest does not; returns their metas."""
        known = {s["id"] for s in self.segments}
        new = [copy.deepcopy(s) for s in other.segments if s["id"] not in known]
        self.segments += new
        self.next_segment_id = max(self.next_segment_id, other.next_segment_id)
        return new

    # -- form on disk -------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["load"] = self.load.to_dict()
        return {"format": FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "Manifest":
        fields = {k: v for k, v in d.items() if k != "format"}
        fields["load"] = LoadIntent.from_dict(d["load"])
        return cls(**fields)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the collection folder ``folder``, checked against its checksum
    (CorruptFile if damaged or of another format)."""
    path = folder / FILE
    with open(path, "rb") as fh:
        d = open_json(fh.read(), path)
    if d.get("format") != FORMAT:
        raise CorruptFile(f"{path} has format {d.get('format')!r}; this Hotset reads format "
                          f"{FORMAT}")
    try:
        return Manifest.from_dict(d)
    except (KeyError, TypeError) as e:
        raise CorruptFile(f"{path} is not a Hotset manifest: {e}") from e


def write_manifest(folder: Path, m: Manifest) -> None:
    """Replace the manifest of the collection folder ``folder`` atomically, checksummed."""
    write_atomic(folder / FILE, sealed_json(m.to_dict()))


class ManifestFile:
    """The only writer of a collection's manifest."""

    def __init__(self, folder: Path, current: Manifest) -> None:
        self.folder = folder
        self._current = current

    @property
    def current(self) -> Manifest:
        """The manifest as it is on disk. Read it; change it only through a draft."""
        return self._current

    def draft(self) -> Manifest:
        return copy.deepcopy(self._current)

    def commit(self, draft: Manifest,
               outcome: str = "The change was not saved: free disk space and retry") -> None:
        """Write ``draft`` atomically and make it current. Refused: WriteFailed saying
        ``outcome``, and ``current`` is unchanged."""
        try:
            write_manifest(self.folder, draft)
        except OSError as e:
            raise WriteFailed(str(self.folder / FILE), e, outcome) from e
        self._current = draft

    @contextlib.contextmanager
    def change(self, undone: str = "The change was not saved") -> Iterator[Manifest]:
        """``with mf.change() as m: m.add_partition(...)``: committed when the block ends
        without an exception, discarded otherwise."""
        d = self.draft()
        yield d
        self.commit(d, f"{undone}: free disk space and retry")

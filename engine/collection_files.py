"""What of a collection's directory a reader needs: its path, manifest, schema, column file
stems and checksums, segment folders and index entries. Read only.

``Collection`` extends it with the write path. ``snapshot()`` is a detached, picklable copy
(the manifest as it is now): what a worker in another process (a Ray actor) is handed to
read sealed segments from the data directory itself, which every node must see at the
same path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .index import VectorIndex, registry
from .index.files import layout_path
from .schema import DYNAMIC_FIELD, CollectionSchema
from .storage.manifest import Manifest
from .storage.segments import shard_path


def column_stems(schema: CollectionSchema) -> dict[str, str]:
    """Column name -> the stem of its files: ``f<field id>`` (ids as describe_collection
    gives them), ``meta`` for the dynamic field. No file is named after a user's string."""
    stems = {f.name: f"f{100 + i}" for i, f in enumerate(schema.fields)}
    stems[DYNAMIC_FIELD] = "meta"
    return stems


class CollectionFiles:
    path: Path
    name: str
    schema: CollectionSchema
    stems: dict[str, str]
    verify: bool

    @property
    def manifest(self) -> Manifest:
        raise NotImplementedError

    def segment_dir(self, seg_id: int) -> Path:
        return self.path / "segments" / f"{seg_id:08d}"

    def _layout_path(self, seg_id: int, field: str) -> Path:
        index = self.vector_index(field)[1]
        return layout_path(self.segment_dir(seg_id), self.stems[field], index.layout_suffix)

    def file_sums(self, seg: dict | int, column: str, fixed: bool | None = None) -> dict | None:
        """The recorded checksums of one column file of a segment (its manifest entry or
        id), or None when verification is off."""
        if not self.verify:
            return None
        meta = seg if isinstance(seg, dict) else self.segment_meta(seg)
        if fixed is None:
            f = self.schema.field(column)
            fixed = f is not None and f.is_fixed
        return meta["files"].get(shard_path(Path(), self.stems[column], fixed).name)

    def vector_index(self, field: str) -> tuple[dict, VectorIndex]:
        """The manifest entry of ``field``'s vector index and the index type serving it."""
        entry = self.manifest.index_on(field)
        return entry, registry.get(entry["engine_type"])

    def segment_meta(self, seg_id: int) -> dict:
        return self.manifest.segment(seg_id)

    @property
    def partitions(self) -> list[str]:
        return list(self.manifest.partitions)

    def snapshot(self) -> "FilesSnapshot":
        return FilesSnapshot(self.path, self.name, self.schema, dict(self.stems), self.verify,
                             self.manifest)


@dataclass(eq=False)
class FilesSnapshot(CollectionFiles):
    path: Path
    name: str
    schema: CollectionSchema
    stems: dict[str, str]
    verify: bool
    frozen: Manifest

    @property
    def manifest(self) -> Manifest:
        return self.frozen

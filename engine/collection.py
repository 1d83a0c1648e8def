"""One collection on disk and in host memory: manifest, WAL, segments, deletes.

Write path: validate (columns.py) -> WAL append + fsync -> growing segment; ``write``
returns the change records (changes.py) that residency applies to a resident copy.
``flush`` seals every partition's growing rows into segment folders, writes the sealed
deletes, replaces the manifest atomically and only then empties the WAL, so a crash at any
point reopens to the last acknowledged state (records at or below the manifest's
``flushed_seq`` are skipped on replay; unlisted segment folders are removed). A vector
index with a layout (IVF) is trained here and decides the order sealed rows are stored in.
"""
from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors import SafetensorError

from .collection_files import CollectionFiles, column_stems
from .changes import Change, Deleted, Inserted, Rewritten, Sealed, Trained
from .columns import REPLACED_KEYS, Batch, absent_column, concat, take, without_replaced
from .errors import WriteFailed
from .index import IndexSpec, VectorIndex, registry
from .index.files import layout_path, load_tensors, save_tensors, trained_path
from .schema import DYNAMIC_FIELD, CollectionSchema, FieldSchema
from .segment import GrowingSegment, SealedSegment, match_keys
from .storage.manifest import (DEFAULT_PARTITION, LoadIntent, Manifest, ManifestFile,
                               read_manifest, write_manifest)
from .storage.segments import (has_valid, read_arrow, read_deletes, read_segment, read_tensor,
                               shard_path, write_deletes, write_segment)
from .storage.wal import Kind, WriteAheadLog, replay

__all__ = ["Collection", "DEFAULT_PARTITION", "column_stems", "index_entry", "read_manifest"]

_NOT_SEALED = ("Nothing was sealed: the rows stay in memory and in the write-ahead log; free "
               "disk space and flush again")


class Collection(CollectionFiles):
    def __init__(self, path: Path, manifest: Manifest, seal_bytes: int) -> None:
        self.path = path
        self.mf = ManifestFile(path, manifest)
        self.name: str = manifest.name
        self.schema = CollectionSchema.from_dict(manifest.schema)
        self.pk = self.schema.primary
        self.seal_bytes = seal_bytes
        self.seq: int = manifest.flushed_seq
        self.sealed: list[SealedSegment] = []
        self.growing: dict[str, GrowingSegment] = {}
        self._pending_deletes: list[tuple[Any, int, str]] = []  # keys, seq, partition
        self.stats = {"sealed_bytes": 0, "seal_seconds": 0.0, "seals": 0}
        self.device = torch.device("cpu")  # where index training runs; set by the database
        self.stems = column_stems(self.schema)
        self.verify = True  # check every file read against its checksum
        self.trained: dict[str, dict[str, torch.Tensor]] = {}  # vector field -> trained parts
        for d in manifest.indexes:
            if d.get("trained"):
                self.trained[d["field_name"]] = load_tensors(
                    trained_path(path, d["index_id"]), d["checksum"])
        (path / "segments").mkdir(exist_ok=True)
        (path / "deletes").mkdir(exist_ok=True)
        self._open_segments()
        for rec in replay(path / "wal.log"):
            if rec.seq > self.seq:
                self._apply(rec.kind, rec.partition, rec.batch, rec.seq)
        self.wal = WriteAheadLog(path / "wal.log")

    @property
    def manifest(self) -> Manifest:
        """The manifest as it is on disk (read only: changes go through ``self.mf``)."""
        return self.mf.current

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, name: str, schema: CollectionSchema, seal_bytes: int,
               index_specs: list[IndexSpec] = (), properties: dict | None = None,
               like: Manifest | None = None) -> "Collection":
        """Write a new collection folder at ``path`` (all of it, or nothing: WriteFailed)
        with the indexes ``index_specs`` and ``properties`` (checked by the caller) and open
        it. ``like``: an empty copy of that manifest instead (its indexes untrained, its
        partitions, properties and load intent), for truncate."""
        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        m = Manifest(name, schema.to_dict(), properties=dict(properties or {}))
        for spec in index_specs:
            m.add_index(index_entry(m, schema, spec, 0))
        if like is not None:
            m.empty_like(like)
        try:
            tmp.mkdir(parents=True)
            write_manifest(tmp, m)
            tmp.rename(path)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise WriteFailed(str(path), e, "The collection was not created: free disk space "
                              "and retry") from e
        return cls(path, m, seal_bytes)

    def _open_segments(self) -> None:
        listed = {f"{s['id']:08d}" for s in self.manifest.segments}
        for child in (self.path / "segments").iterdir():
            if child.name not in listed:  # a seal that crashed before its manifest landed
                shutil.rmtree(child)
        deletes = [read_deletes(self.path / "deletes" / f, self.manifest.delete_sums[f])
                   for f in self.manifest.delete_files]
        listed_del = set(self.manifest.delete_files)
        for child in (self.path / "deletes").iterdir():
            if child.name not in listed_del:
                child.unlink()
        for s in self.manifest.segments:
            self.sealed.append(self._open_segment(s, deletes))

    def _open_segment(self, s: dict, deletes: list) -> SealedSegment:
        seg_dir = self.segment_dir(s["id"])
        stem, sums = self.stems[self.pk.name], self.file_sums(s, self.pk.name)
        pk = (read_tensor(seg_dir, stem, sums=sums) if self.pk.is_fixed
              else read_arrow(seg_dir, stem, sums))
        seg = SealedSegment(s["id"], s["partition"], s["sealed_seq"], pk,
                            torch.zeros(len(pk), dtype=torch.bool))
        if s.get("ivf"):
            path = self._layout_path(s["id"], s["ivf"])
            seg.layout_field = s["ivf"]
            if self.vector_index(s["ivf"])[1].lazy_layout:
                seg.layout_file = (path, s["files"][path.name]["file"])
            else:
                seg.layout = load_tensors(path, s["files"][path.name]["file"])
        for keys, seqs, parts in deletes:
            mine = pc.or_(pc.equal(parts, ""), pc.equal(parts, seg.partition))
            applies = pc.and_(pa.array((seqs > seg.sealed_seq).numpy()), mine)
            if pc.any(applies).as_py():
                seg.deleted |= match_keys(pk, self._keys(keys.filter(applies)))
        return seg

    def _keys(self, keys: Any) -> Any:
        """A key column from Arrow, in the representation of this collection's pk."""
        if self.pk.is_fixed and not isinstance(keys, torch.Tensor):
            return torch.from_numpy(keys.to_numpy(zero_copy_only=False).astype("int64"))
        return keys

    # -- writes -----------------------------------------------------------------------
    def next_seq(self) -> int:
        return self.seq + 1

    def write(self, kind: Kind, partition: str, batch: Batch) -> tuple[int, list[Change]]:
        """Log (fsync) then apply one write; returns the number of rows it deleted and the
        changes it made (an automatic seal included)."""
        seq = self.next_seq()
        self.wal.append(seq, kind, partition, batch)
        changes: list[Change] = []
        deleted = self._apply(kind, partition, batch, seq, changes)
        if sum(g.nbytes() for g in self.growing.values()) >= self.seal_bytes:
            try:
                changes += self.flush()
            except WriteFailed as e:  # the write is in the WAL: it stays acknowledged
                warnings.warn(f"collection {self.name}: automatic seal failed, retried at "
                              f"the next write or flush: {e.message}", RuntimeWarning,
                              stacklevel=4)
        return deleted, changes

    def _apply(self, kind: Kind, partition: str, batch: Batch, seq: int,
               changes: list[Change] | None = None) -> int:
        self.seq = seq
        changes = [] if changes is None else changes
        deleted = 0
        if kind in (Kind.DELETE, Kind.UPSERT):
            keys = batch.cols["pk"] if kind == Kind.DELETE else batch.cols.get(
                REPLACED_KEYS, batch.cols[self.pk.name])
            deleted = self._delete(keys, seq, partition if kind == Kind.DELETE else "",
                                   changes)
        if kind in (Kind.INSERT, Kind.UPSERT):
            batch = without_replaced(batch)
            seg = self.growing.setdefault(partition, GrowingSegment(partition))
            seg.append(batch)
            changes.append(Inserted(partition, batch))
        return deleted

    def _delete(self, keys: Any, seq: int, partition: str, changes: list[Change]) -> int:
        """Delete ``keys`` in ``partition`` ("" = every partition); returns rows deleted."""
        self._pending_deletes.append((keys, seq, partition))
        count = 0
        for seg in [*self.sealed, *self.growing.values()]:
            if seg.num_rows == 0 or (partition and seg.partition != partition):
                continue
            pk = seg.pk if isinstance(seg, SealedSegment) else seg.data().cols[self.pk.name]
            hit = match_keys(pk, keys) & ~seg.deleted
            n = int(hit.sum())
            if n:
                seg.deleted |= hit
                count += n
                changes.append(Deleted(seg, hit))
        return count

    def flush(self) -> list[Change]:
        """Seal all growing rows and sealed deletes; then empty the WAL. Returns the
        changes (a training of the layout index, the seal)."""
        if not any(g.num_rows for g in self.growing.values()) and not self._pending_deletes:
            return []
        t0 = time.perf_counter()
        changes: list[Change] = []
        new: list[tuple[SealedSegment, torch.Tensor]] = []
        sealing = []
        for part, g in self.growing.items():
            if g.live_rows:
                live = torch.nonzero(~g.deleted).flatten()
                batch = take(g.data(), live) if len(live) < g.num_rows else g.data()
                sealing.append((part, live, batch))
        layout = self.layout_index()
        if layout is not None and layout[0]["field_name"] not in self.trained:
            try:
                field = layout[0]["field_name"]
                changes += self._train(layout, [
                    b.cols[field] if field not in b.valid else b.cols[field][b.valid[field]]
                    for *_, b in sealing])
            except (OSError, SafetensorError) as e:  # the trained parts' file
                raise WriteFailed(str(self.path), e, _NOT_SEALED) from e
        m = self.mf.draft()  # current once everything is on disk
        written: list[Path] = []
        try:
            for part, live, batch in sealing:
                ordered = self._ordered(batch, layout)
                if ordered is not None:
                    perm, _ = ordered
                    batch, live = take(batch, perm), live[perm]
                seg = self._write_sealed(m, part, batch, self.seq, layout, ordered)
                written.append(self.segment_dir(seg.id))
                new.append((seg, live))
            if self._pending_deletes:
                written.append(self._write_pending_deletes(m))
            m.set_flushed(self.seq)
            self.mf.commit(m, _NOT_SEALED)
        except (OSError, SafetensorError, WriteFailed) as e:  # disk full or failing: undo
            for p in written:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            if isinstance(e, WriteFailed):
                raise
            raise WriteFailed(str(self.path), e, _NOT_SEALED) from e
        self.stats["seal_seconds"] += time.perf_counter() - t0
        self.stats["seals"] += 1
        self._pending_deletes = []
        self.growing = {}
        self.sealed += [seg for seg, _ in new]
        changes.append(Sealed(tuple(new)))
        try:
            self.wal.reset()
        except OSError as e:  # harmless: replay skips records at or below flushed_seq
            warnings.warn(f"collection {self.name}: the write-ahead log could not be emptied "
                          f"({e}); its records are sealed and skipped on replay, and it is "
                          "emptied at the next flush", RuntimeWarning, stacklevel=2)
        return changes

    def _ordered(self, batch: Batch, layout: tuple[dict, VectorIndex] | None
                 ) -> tuple[torch.Tensor, dict] | None:
        """(permutation, layout tensors) to store ``batch`` in its layout index's order, or
        None (no such index, or not trained yet)."""
        if layout is None or layout[0]["field_name"] not in self.trained:
            return None
        entry, index = layout
        field = entry["field_name"]
        return index.order(batch.cols[field], self.trained[field], entry["metric_type"],
                           self.device, entry["engine_params"])

    def _write_pending_deletes(self, m: Manifest) -> Path:
        """Write the deletes logged since the last flush as one Arrow file, listed in ``m``
        (the caller saves it); returns the file."""
        keys = [k for k, _, _ in self._pending_deletes]
        lens = [len(k) for k in keys]  # one seq and one partition per delete call
        seqs = torch.repeat_interleave(
            torch.tensor([s for _, s, _ in self._pending_deletes], dtype=torch.int64),
            torch.tensor(lens))
        parts = np.repeat(np.array([p for *_, p in self._pending_deletes], dtype=object), lens)
        all_keys = torch.cat(keys) if isinstance(keys[0], torch.Tensor) else pa.concat_arrays(keys)
        path = self.path / "deletes" / f"{self.seq:016d}.arrow"
        try:
            m.add_delete_file(path.name, write_deletes(path, all_keys, seqs, parts))
        except BaseException:
            path.with_name(path.name + ".tmp").unlink(missing_ok=True)
            raise
        return path

    def _write_sealed(self, m: Manifest, part: str, batch: Batch, sealed_seq: int,
                      layout: tuple[dict, VectorIndex] | None,
                      ordered: tuple[torch.Tensor, dict] | None) -> SealedSegment:
        """Write ``batch`` as a new sealed segment folder and list it in the manifest ``m``
        (the caller saves it). ``ordered``: the batch is in ``layout``'s order, whose
        tensors are written beside the shards."""
        seg_id = m.new_segment_id()
        seg_dir = self.segment_dir(seg_id)
        try:
            sizes, sums = write_segment(seg_dir, batch, self.stems)
            if ordered is not None:
                entry, index = layout
                path = layout_path(seg_dir, self.stems[entry["field_name"]], index.layout_suffix)
                sums[path.name] = {"file": save_tensors(path, ordered[1])}
        except BaseException:  # no manifest lists this id yet: remove all of it
            shutil.rmtree(seg_dir.with_name(seg_dir.name + ".tmp"), ignore_errors=True)
            shutil.rmtree(seg_dir, ignore_errors=True)
            raise
        meta = {"id": seg_id, "partition": part, "num_rows": batch.num_rows,
                "sealed_seq": sealed_seq, "bytes": sizes, "files": sums}
        seg = SealedSegment(seg_id, part, sealed_seq, batch.cols[self.pk.name],
                            torch.zeros(batch.num_rows, dtype=torch.bool))
        if ordered is not None:
            meta["ivf"] = seg.layout_field = layout[0]["field_name"]
            if layout[1].lazy_layout:
                path = layout_path(seg_dir, self.stems[seg.layout_field],
                                   layout[1].layout_suffix)
                seg.layout_file = (path, sums[path.name]["file"])
            else:
                seg.layout = ordered[1]
        self.stats["sealed_bytes"] += sum(sizes.values())
        m.add_segment(meta)
        return seg

    # -- indexes --------------------------------------------------------------------------
    def layout_index(self) -> tuple[dict, VectorIndex] | None:
        """The vector index that decides the order sealed rows are stored in (at most one
        per collection: rows have one order), or None."""
        for d in self.manifest.indexes:
            index = registry.find(d["engine_type"])
            if index is not None and index.layout_suffix:
                return d, index
        return None

    def add_indexes(self, specs: list[IndexSpec]) -> list[Change]:
        """List new indexes (saved once; refused: WriteFailed, nothing changed) and lay the
        sealed rows out for one with a layout; returns the changes of that build."""
        with self.mf.change("The index was not created") as m:
            for spec in specs:
                m.add_index(index_entry(m, self.schema, spec, self.row_count()))
        return self.build_layout() if self.layout_index() is not None else []

    def _train(self, layout: tuple[dict, VectorIndex], fresh: list[torch.Tensor]) -> list[Change]:
        """Train the layout index from a sample of sealed and sealing vectors once there
        are enough of them; returns the change (none when there are too few rows)."""
        entry, index = layout
        field = entry["field_name"]
        fewest, target = index.train_rows(entry["engine_params"])
        parts = list(fresh)
        have = sum(len(p) for p in parts)
        for seg in self.sealed:
            if have >= target:
                break
            seg_dir, sums = self.segment_dir(seg.id), self.file_sums(seg.id, field)
            v = read_tensor(seg_dir, self.stems[field], sums=sums)
            keep = ~seg.deleted
            if has_valid(seg_dir, self.stems[field]):  # a nullable vector: train on values
                keep &= read_tensor(seg_dir, self.stems[field], "valid", sums=sums)
            parts.append(v[keep])
            have += len(parts[-1])
        if have < max(fewest, 1):
            return []
        pool = torch.cat([p.float() for p in parts])
        g = torch.Generator().manual_seed(0)
        sample = pool[torch.randperm(len(pool), generator=g)[:target]]
        trained = index.train(sample, entry["engine_params"], entry["metric_type"], self.device)
        digest = save_tensors(trained_path(self.path, entry["index_id"]), trained)
        with self.mf.change("The index was not trained") as m:  # refused: not used
            m.set_trained(entry["index_name"], digest)
        self.trained[field] = trained
        return [Trained(field, trained)]

    def build_layout(self) -> list[Change]:
        """Train the layout index (if there are enough rows) and rewrite every sealed
        segment not yet in its order. Returns the changes of the flush and training that
        come first; the rewrite itself needs the collection not resident."""
        changes = self.flush()
        layout = self.layout_index()
        field = layout[0]["field_name"]
        if field not in self.trained:
            changes += self._train(layout, [])
            if field not in self.trained:
                return changes
        columns = self._columns()
        for i, seg in enumerate(list(self.sealed)):
            if seg.layout_field == field:
                continue
            old_dir = self.segment_dir(seg.id)
            batch = self._read_segment(seg, columns)
            ordered = self._ordered(batch, layout)
            m = self.mf.draft()
            new_id = m.next_segment_id
            try:
                new = self._write_sealed(m, seg.partition, take(batch, ordered[0]),
                                         seg.sealed_seq, layout, ordered)
                m.remove_segment(seg.id)
                self.mf.commit(m)
            except (OSError, SafetensorError, WriteFailed) as e:
                shutil.rmtree(self.segment_dir(new_id), ignore_errors=True)
                raise WriteFailed(str(self.path), e, "The index build stopped: segments not "
                                  "rewritten yet keep their order and are scanned exactly; "
                                  "free disk space and create the index again") from e
            new.deleted = seg.deleted[ordered[0]]
            shutil.rmtree(old_dir, ignore_errors=True)
            self.sealed[i] = new
        return changes

    def drop_index(self, index_name: str) -> bool:
        """Remove an index from the manifest (saved once; refused: WriteFailed, nothing
        changed); False if there is none of that name. Dropping the layout index also
        forgets the order the segments it wrote are in (their rows stay in that order,
        which an exact scan does not care about), so a later one lays every segment out
        again with its own trained parts."""
        entry = self.manifest.index(index_name)
        if entry is None:
            return False
        field = entry["field_name"]
        index = registry.find(entry["engine_type"])
        stale = []
        with self.mf.change("The index was not dropped") as m:
            m.remove_index(index_name)
            if index is not None and index.layout_suffix:
                name = layout_path(Path(), self.stems[field], index.layout_suffix).name
                for seg_id in m.clear_layout(field, name):
                    stale.append(self.segment_dir(seg_id) / name)
        self.trained.pop(field, None)
        for seg in self.sealed:
            if seg.layout_field == field:
                seg.layout_field, seg.layout, seg.layout_file = None, None, None
        if entry.get("trained"):
            stale.append(trained_path(self.path, entry["index_id"]))
        for path in stale:
            path.unlink(missing_ok=True)
        return True

    def _read_segment(self, seg: SealedSegment, columns: dict[str, tuple[str, bool]]) -> Batch:
        """Every column of a sealed segment; a field added after it was sealed reads as its
        default or null (``absent_column``): nothing was rewritten when it was added."""
        stored = self.segment_meta(seg.id)["bytes"]
        batch = read_segment(self.segment_dir(seg.id),
                             {n: c for n, c in columns.items() if n in stored},
                             self.segment_meta(seg.id)["files"])
        batch.num_rows = seg.num_rows
        for name in columns:
            f = self.schema.field(name)
            if name not in stored and f is not None:
                batch.cols[name], valid = absent_column(f, seg.num_rows)
                if valid is not None:
                    batch.valid[name] = valid
        return batch

    def add_field(self, f: FieldSchema) -> list[Change]:
        """Add field ``f`` (nullable, or with a default) to the schema. Growing rows are
        sealed first, so every stored row predates the field or has it; rows that predate
        it read as its default or null, and nothing is rewritten. Saved once (refused:
        WriteFailed, the schema unchanged); a resident copy reloads with the field."""
        schema = CollectionSchema.from_dict(self.schema.to_dict())
        schema.add(f)
        changes = self.flush()
        with self.mf.change("The field was not added") as m:
            m.schema = schema.to_dict()
        self.schema = schema
        self.stems = column_stems(schema)
        return [*changes, Rewritten((), ())]

    def _columns(self) -> dict[str, tuple[str, bool]]:
        """Every stored column: name -> (file stem, fixed width?)."""
        columns = {f.name: (self.stems[f.name], f.is_fixed) for f in self.schema.fields}
        if self.schema.enable_dynamic_field:
            columns[DYNAMIC_FIELD] = (self.stems[DYNAMIC_FIELD], False)
        return columns

    def compact(self, target_bytes: int | None = None) -> list[Change]:
        """Seal, then rewrite each partition's sealed segments that hold deleted rows or are
        smaller than half of ``target_bytes`` (default: the seal size) into as few segments
        as fit ``target_bytes``, without their deleted rows, in the layout index's order;
        delete files that apply to no segment any more are dropped. One manifest commit:
        refused, nothing changed. Returns the changes (the seal's, then Rewritten)."""
        changes = self.flush()
        target = int(target_bytes or self.seal_bytes)
        layout = self.layout_index()
        columns = self._columns()
        m = self.mf.draft()
        removed: list[SealedSegment] = []
        added: list[SealedSegment] = []
        try:
            for part in self.partitions:
                segs = [s for s in self.sealed if s.partition == part]
                small = [s for s in segs if bool(s.deleted.any()) or sum(
                    self.segment_meta(s.id)["bytes"].values()) < target // 2]
                if not small or (len(small) == 1 and not bool(small[0].deleted.any())):
                    continue
                groups, size = [[]], 0
                for s in small:
                    nbytes = sum(self.segment_meta(s.id)["bytes"].values())
                    if groups[-1] and size + nbytes > target:
                        groups.append([])
                        size = 0
                    groups[-1].append(s)
                    size += nbytes
                for group in groups:
                    live = [take(self._read_segment(s, columns),
                                 torch.nonzero(~s.deleted).flatten()) for s in group]
                    batch = concat(live)
                    for s in group:
                        m.remove_segment(s.id)
                    removed += group
                    if batch.num_rows == 0:
                        continue
                    ordered = self._ordered(batch, layout)
                    if ordered is not None:
                        batch = take(batch, ordered[0])
                    added.append(self._write_sealed(m, part, batch,
                                                    max(s.sealed_seq for s in group),
                                                    layout, ordered))
            if not removed:
                return changes
            floor = min((s["sealed_seq"] for s in m.segments), default=None)
            for name in list(m.delete_files):
                if floor is None or int(name.split(".")[0]) <= floor:
                    m.delete_files.remove(name)  # its deletes are older than every segment
                    m.delete_sums.pop(name, None)
            self.mf.commit(m, "Nothing was compacted: free disk space and compact again")
        except (OSError, SafetensorError, WriteFailed) as e:
            for s in added:
                shutil.rmtree(self.segment_dir(s.id), ignore_errors=True)
            if isinstance(e, WriteFailed):
                raise
            raise WriteFailed(str(self.path), e, "Nothing was compacted: free disk space and "
                              "compact again") from e
        gone = {s.id for s in removed}
        self.sealed = [s for s in self.sealed if s.id not in gone] + added
        for seg_id in gone:
            shutil.rmtree(self.segment_dir(seg_id), ignore_errors=True)
        live_files = set(m.delete_files)
        for child in (self.path / "deletes").iterdir():
            if child.name not in live_files:
                child.unlink(missing_ok=True)
        return changes + [Rewritten(tuple(sorted(gone)), tuple(s.id for s in added))]

    def adopt_new_segments(self) -> list[SealedSegment]:
        """Open segments that the manifest on disk lists and this process does not know yet
        (written by a bulk import or another tool); returns them."""
        on_disk = read_manifest(self.path)
        m = self.mf.draft()
        new_meta = m.adopt(on_disk)
        if not new_meta:
            return []
        self.mf.commit(m)
        added = [self._open_segment(s, []) for s in new_meta]
        self.sealed += added
        return added

    # -- partitions and load intent -------------------------------------------------------
    def add_partition(self, name: str) -> None:
        with self.mf.change("The partition was not created") as m:
            m.add_partition(name)

    def drop_partition(self, partition: str) -> list[Change]:
        """Seal, then forget a partition and delete its segments; returns the seal's
        changes."""
        changes = self.flush()
        with self.mf.change("The partition was not dropped") as m:
            gone = m.remove_partition(partition)
        self.sealed = [s for s in self.sealed if s.partition != partition]
        for seg_id in gone:
            shutil.rmtree(self.segment_dir(seg_id), ignore_errors=True)
        return changes

    def rename(self, name: str) -> None:
        """Take the name the catalog now lists (which is the truth: the manifest's copy is
        informational and follows when the disk lets it)."""
        self.name = name
        try:
            with self.mf.change("The manifest keeps the old name") as m:
                m.name = name
        except WriteFailed as e:
            warnings.warn(f"collection {name}: {e.message}", RuntimeWarning, stacklevel=3)

    def set_load_intent(self, intent: LoadIntent) -> None:
        if self.manifest.load != intent:
            with self.mf.change("The load state was not saved") as m:
                m.set_load(intent)

    # -- reads ------------------------------------------------------------------------
    def row_count(self, partition: str | None = None) -> int:
        """Live rows, of one partition or of all."""
        return sum(s.live_rows for s in self.sealed
                   if partition is None or s.partition == partition) + sum(
            g.live_rows for p, g in self.growing.items() if partition is None or p == partition)

    def set_properties(self, properties: dict[str, str]) -> None:
        """Replace the collection properties (saved once; refused: WriteFailed)."""
        with self.mf.change("The collection properties were not changed") as m:
            m.properties = dict(properties)

    def close(self) -> None:
        self.wal.close()


def index_entry(m: Manifest, schema: CollectionSchema, spec: IndexSpec, row_count: int) -> dict:
    """The manifest entry of a new index, with an id drawn from ``m``; a vector AUTOINDEX
    resolves by the collection's size, here and once."""
    entry = spec.to_dict()
    entry["index_id"] = m.new_index_id()
    etype, eparams = spec.index_type, dict(spec.params)
    f = schema.field(spec.field_name)  # None: a JSON-path index on a dynamic key
    if f is not None and f.is_vector:
        etype, eparams = registry.resolve(etype, eparams, row_count, spec.metric_type,
                                          registry.kind_of(f.dtype))
    entry.update(engine_type=etype, engine_params=eparams, trained=False)
    return entry

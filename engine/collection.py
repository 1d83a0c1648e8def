"""One collection on disk and in host memory: manifest, WAL, segments, deletes.

Write path: validate (columns.py) -> WAL append + fsync -> growing segment -> resident copy
(when loaded). ``flush`` seals every partition's growing rows into segment folders, writes
the sealed deletes, replaces the manifest atomically and only then empties the WAL, so a
crash at any point reopens to the last acknowledged state (records at or below the
manifest's ``flushed_seq`` are skipped on replay; unlisted segment folders are removed).
"""
from __future__ import annotations

import copy
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from safetensors import SafetensorError

from .columns import REPLACED_KEYS, Batch, take, without_replaced
from .errors import WriteFailed
from .index import ivf
from .index.spec import IndexSpec
from .schema import DYNAMIC_FIELD, CollectionSchema
from .segment import GrowingSegment, SealedSegment, match_keys
from .storage.checksum import CorruptFile, open_json, sealed_json
from .storage.files import write_atomic
from .storage.segments import (read_arrow, read_deletes, read_segment, read_tensor,
                               shard_path, write_deletes, write_segment)
from .storage.wal import Kind, WriteAheadLog, replay

MANIFEST = "manifest.json"
_NOT_SEALED = ("Nothing was sealed: the rows stay in memory and in the write-ahead log; free "
               "disk space and flush again")
DEFAULT_PARTITION = "_default"
FORMAT = 2


def read_manifest(path: Path) -> dict:
    """The manifest on disk of the collection folder ``path``, checked against its
    checksum (CorruptFile if damaged)."""
    with open(path / MANIFEST, "rb") as fh:
        m = open_json(fh.read(), path / MANIFEST)
    if m.get("format") != FORMAT:
        raise CorruptFile(f"{path / MANIFEST} has format {m.get('format')!r}; this Hotset "
                          f"reads format {FORMAT}")
    return m


def write_manifest(path: Path, m: dict) -> None:
    """Replace the manifest of the collection folder ``path`` atomically, checksummed."""
    write_atomic(path / MANIFEST, sealed_json(m))


def new_manifest(name: str, schema: CollectionSchema) -> dict:
    return {"format": FORMAT, "name": name, "schema": schema.to_dict(), "indexes": [],
            "partitions": [DEFAULT_PARTITION], "segments": [], "delete_files": [],
            "delete_sums": {}, "flushed_seq": 0, "next_segment_id": 1, "next_index_id": 1,
            "load": {"loaded": False, "load_fields": None, "skip_dynamic": False,
                     "partitions": None}}


def column_stems(schema: CollectionSchema) -> dict[str, str]:
    """Column name -> the stem of its files: ``f<field id>`` (ids as describe_collection
    gives them), ``meta`` for the dynamic field. No file is named after a user's string."""
    stems = {f.name: f"f{100 + i}" for i, f in enumerate(schema.fields)}
    stems[DYNAMIC_FIELD] = "meta"
    return stems


class Collection:
    def __init__(self, path: Path, manifest: dict, seal_bytes: int) -> None:
        self.path = path
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.schema = CollectionSchema.from_dict(manifest["schema"])
        self.pk = self.schema.primary
        self.seal_bytes = seal_bytes
        self.seq: int = manifest["flushed_seq"]
        self.sealed: list[SealedSegment] = []
        self.growing: dict[str, GrowingSegment] = {}
        self._pending_deletes: list[tuple[Any, int, str]] = []  # keys, seq, partition
        self.stats = {"sealed_bytes": 0, "seal_seconds": 0.0, "seals": 0}
        # Set by the loader while the collection is resident: called with (event, *args).
        self.listener: Callable[..., None] | None = None
        self.device = torch.device("cpu")  # where index training runs; set by the client
        self.stems = column_stems(self.schema)
        self.verify = True  # check every file read against its checksum
        self.centroids: dict[str, torch.Tensor] = {}
        for d in manifest["indexes"]:
            if d.get("trained"):
                self.centroids[d["field_name"]] = ivf.load_centroids(
                    ivf.centroid_path(path, d["index_id"]), d["checksum"])
        (path / "segments").mkdir(exist_ok=True)
        (path / "deletes").mkdir(exist_ok=True)
        self._open_segments()
        for rec in replay(path / "wal.log"):
            if rec.seq > self.seq:
                self._apply(rec.kind, rec.partition, rec.batch, rec.seq)
        self.wal = WriteAheadLog(path / "wal.log")

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, name: str, schema: CollectionSchema, seal_bytes: int) -> "Collection":
        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            tmp.mkdir(parents=True)
            write_manifest(tmp, new_manifest(name, schema))
            tmp.rename(path)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise WriteFailed(str(path), e, "The collection was not created: free disk space "
                              "and retry") from e
        return cls(path, new_manifest(name, schema), seal_bytes)

    def _open_segments(self) -> None:
        listed = {f"{s['id']:08d}" for s in self.manifest["segments"]}
        for child in (self.path / "segments").iterdir():
            if child.name not in listed:  # a seal that crashed before its manifest landed
                shutil.rmtree(child)
        deletes = [read_deletes(self.path / "deletes" / f, self.manifest["delete_sums"][f])
                   for f in self.manifest["delete_files"]]
        listed_del = set(self.manifest["delete_files"])
        for child in (self.path / "deletes").iterdir():
            if child.name not in listed_del:
                child.unlink()
        for s in self.manifest["segments"]:
            self.sealed.append(self._open_segment(s, deletes))

    def _open_segment(self, s: dict, deletes: list) -> SealedSegment:
        seg_dir = self.segment_dir(s["id"])
        stem, sums = self.stems[self.pk.name], self.file_sums(s, self.pk.name)
        pk = (read_tensor(seg_dir, stem, sums=sums) if self.pk.is_fixed
              else read_arrow(seg_dir, stem, sums))
        seg = SealedSegment(s["id"], s["partition"], s["sealed_seq"], pk,
                            torch.zeros(len(pk), dtype=torch.bool))
        if s.get("ivf"):
            seg.ivf_field = s["ivf"]
            path = ivf.offsets_path(seg_dir, self.stems[s["ivf"]])
            seg.ivf_offsets = ivf.load_offsets(path, s["files"][path.name]["file"])
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

    def segment_dir(self, seg_id: int) -> Path:
        return self.path / "segments" / f"{seg_id:08d}"

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

    # -- writes -----------------------------------------------------------------------
    def next_seq(self) -> int:
        return self.seq + 1

    def write(self, kind: Kind, partition: str, batch: Batch) -> int:
        """Log (fsync) then apply one write; returns the number of rows it deleted."""
        seq = self.next_seq()
        if self.listener and kind != Kind.DELETE:
            self.listener("reserve", partition, without_replaced(batch))  # may refuse
        self.wal.append(seq, kind, partition, batch)
        deleted = self._apply(kind, partition, batch, seq)
        if sum(g.nbytes() for g in self.growing.values()) >= self.seal_bytes:
            try:
                self.flush()
            except WriteFailed as e:  # the write is in the WAL: it stays acknowledged
                warnings.warn(f"collection {self.name}: automatic seal failed, retried at "
                              f"the next write or flush: {e.message}", RuntimeWarning,
                              stacklevel=4)
        return deleted

    def _apply(self, kind: Kind, partition: str, batch: Batch, seq: int) -> int:
        self.seq = seq
        deleted = 0
        if kind in (Kind.DELETE, Kind.UPSERT):
            keys = batch.cols["pk"] if kind == Kind.DELETE else batch.cols.get(
                REPLACED_KEYS, batch.cols[self.pk.name])
            deleted = self._delete(keys, seq, partition if kind == Kind.DELETE else "")
        if kind in (Kind.INSERT, Kind.UPSERT):
            batch = without_replaced(batch)
            seg = self.growing.setdefault(partition, GrowingSegment(partition))
            seg.append(batch)
            if self.listener:
                self.listener("insert", partition, batch)
        return deleted

    def _delete(self, keys: Any, seq: int, partition: str) -> int:
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
                if self.listener:
                    self.listener("delete", seg, hit)
        return count

    def flush(self) -> None:
        """Seal all growing rows and sealed deletes; then empty the WAL."""
        if not any(g.num_rows for g in self.growing.values()) and not self._pending_deletes:
            return
        t0 = time.perf_counter()
        new: list[tuple[SealedSegment, GrowingSegment, torch.Tensor]] = []
        sealing = []
        for part, g in self.growing.items():
            if g.live_rows:
                live = torch.nonzero(~g.deleted).flatten()
                batch = take(g.data(), live) if len(live) < g.num_rows else g.data()
                sealing.append((part, g, live, batch))
        spec = self.ivf_spec()
        if spec is not None and spec.field_name not in self.centroids:
            try:
                self._train(spec, [b.cols[spec.field_name] for *_, b in sealing])
            except (OSError, SafetensorError) as e:  # the centroids file
                raise WriteFailed(str(self.path), e, _NOT_SEALED) from e
        m = copy.deepcopy(self.manifest)  # self.manifest changes once everything is on disk
        written: list[Path] = []
        try:
            for part, g, live, batch in sealing:
                offsets = None
                if spec is not None and spec.field_name in self.centroids:
                    perm, offsets = ivf.list_order(batch.cols[spec.field_name],
                                                   self.centroids[spec.field_name],
                                                   spec.metric_type, self.device)
                    batch, live = take(batch, perm), live[perm]
                seg = self._write_sealed(m, part, batch, self.seq,
                                         spec if offsets is not None else None, offsets)
                written.append(self.segment_dir(seg.id))
                new.append((seg, g, live))
            if self._pending_deletes:
                written.append(self._write_pending_deletes(m))
            m["flushed_seq"] = self.seq
            write_manifest(self.path, m)
        except (OSError, SafetensorError) as e:  # disk full or failing: undo, keep the rows
            for p in written:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            raise WriteFailed(str(self.path), e, _NOT_SEALED) from e
        self.manifest = m
        self.stats["seal_seconds"] += time.perf_counter() - t0
        self.stats["seals"] += 1
        self._pending_deletes = []
        self.growing = {}
        self.sealed += [seg for seg, _, _ in new]
        if self.listener:  # after the durable step; the listener never raises
            self.listener("sealed", new)
        try:
            self.wal.reset()
        except OSError as e:  # harmless: replay skips records at or below flushed_seq
            warnings.warn(f"collection {self.name}: the write-ahead log could not be emptied "
                          f"({e}); its records are sealed and skipped on replay, and it is "
                          "emptied at the next flush", RuntimeWarning, stacklevel=2)

    def _write_pending_deletes(self, m: dict) -> Path:
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
            m["delete_sums"][path.name] = write_deletes(path, all_keys, seqs, parts)
        except BaseException:
            path.with_name(path.name + ".tmp").unlink(missing_ok=True)
            raise
        m["delete_files"].append(path.name)
        return path

    def _write_sealed(self, m: dict, part: str, batch: Batch, sealed_seq: int, spec: Any,
                      offsets: torch.Tensor | None) -> SealedSegment:
        """Write ``batch`` as a new sealed segment folder and list it in the manifest ``m``
        (the caller saves it)."""
        seg_id = m["next_segment_id"]
        m["next_segment_id"] += 1
        seg_dir = self.segment_dir(seg_id)
        try:
            sizes, sums = write_segment(seg_dir, batch, self.stems)
            if offsets is not None:
                path = ivf.offsets_path(seg_dir, self.stems[spec.field_name])
                sums[path.name] = {"file": ivf.save_offsets(path, offsets)}
        except BaseException:  # no manifest lists this id yet: remove all of it
            shutil.rmtree(seg_dir.with_name(seg_dir.name + ".tmp"), ignore_errors=True)
            shutil.rmtree(seg_dir, ignore_errors=True)
            raise
        meta = {"id": seg_id, "partition": part, "num_rows": batch.num_rows,
                "sealed_seq": sealed_seq, "bytes": sizes, "files": sums}
        seg = SealedSegment(seg_id, part, sealed_seq, batch.cols[self.pk.name],
                            torch.zeros(batch.num_rows, dtype=torch.bool))
        if offsets is not None:
            meta["ivf"] = seg.ivf_field = spec.field_name
            seg.ivf_offsets = offsets
        self.stats["sealed_bytes"] += sum(sizes.values())
        m["segments"].append(meta)
        return seg

    # -- IVF ----------------------------------------------------------------------------
    def ivf_spec(self) -> Any:
        """The IVF index of this collection (an AUTOINDEX that resolved to IVF included),
        with its engine parameters (nlist, default nprobe), or None."""
        for d in self.manifest["indexes"]:
            if d.get("engine_type", d["index_type"]) == "IVF_FLAT":
                return IndexSpec(d["field_name"], d["index_name"], "IVF_FLAT", d["metric_type"],
                                 dict(d.get("engine_params", d["params"])))
        return None

    def _train(self, spec: Any, fresh: list[torch.Tensor]) -> bool:
        """Train the collection's centroids from a sample of sealed and sealing vectors once
        there are at least nlist of them; returns whether centroids exist now."""
        nlist = spec.params["nlist"]
        target = ivf.SAMPLE_PER_LIST * nlist
        parts = list(fresh)
        have = sum(len(p) for p in parts)
        for seg in self.sealed:
            if have >= target:
                break
            v = read_tensor(self.segment_dir(seg.id), self.stems[spec.field_name],
                            sums=self.file_sums(seg.id, spec.field_name))
            parts.append(v[~seg.deleted])
            have += len(parts[-1])
        if have < nlist:
            return False
        pool = torch.cat([p.float() for p in parts])
        g = torch.Generator().manual_seed(0)
        sample = pool[torch.randperm(len(pool), generator=g)[:target]]
        cent = ivf.train(sample, nlist, spec.metric_type, self.device)
        entry = next(d for d in self.manifest["indexes"] if d["index_name"] == spec.index_name)
        entry["checksum"] = ivf.save_centroids(ivf.centroid_path(self.path, entry["index_id"]),
                                               cent)
        entry["trained"] = True
        self.save_manifest()  # refused: undone, and the centroids are not used
        self.centroids[spec.field_name] = cent
        if self.listener:
            self.listener("trained", spec.field_name, cent)
        return True

    def build_ivf(self) -> None:
        """Train the IVF centroids (if there are enough rows) and rewrite every sealed
        segment in list order. The collection must not be resident."""
        spec = self.ivf_spec()
        self.flush()
        if spec.field_name not in self.centroids and not self._train(spec, []):
            return
        cent = self.centroids[spec.field_name]
        columns = {f.name: (self.stems[f.name], f.is_fixed) for f in self.schema.fields}
        if self.schema.enable_dynamic_field:
            columns[DYNAMIC_FIELD] = (self.stems[DYNAMIC_FIELD], False)
        for i, seg in enumerate(list(self.sealed)):
            if seg.ivf_field == spec.field_name:
                continue
            old_dir = self.segment_dir(seg.id)
            batch = read_segment(old_dir, columns, self.segment_meta(seg.id)["files"])
            perm, offsets = ivf.list_order(batch.cols[spec.field_name], cent,
                                           spec.metric_type, self.device)
            m = copy.deepcopy(self.manifest)
            new_id = m["next_segment_id"]
            try:
                new = self._write_sealed(m, seg.partition, take(batch, perm), seg.sealed_seq,
                                         spec, offsets)
                m["segments"] = [s for s in m["segments"] if s["id"] != seg.id]
                write_manifest(self.path, m)
            except (OSError, SafetensorError) as e:
                shutil.rmtree(self.segment_dir(new_id), ignore_errors=True)
                raise WriteFailed(str(self.path), e, "The index build stopped: segments not "
                                  "rewritten yet keep their order and are scanned exactly; "
                                  "free disk space and create the index again") from e
            self.manifest = m
            new.deleted = seg.deleted[perm]
            shutil.rmtree(old_dir, ignore_errors=True)
            self.sealed[i] = new

    def drop_index(self, index_name: str) -> bool:
        """Remove an index from the manifest (saved once; refused: WriteFailed, nothing
        changed); False if there is none of that name. Dropping an IVF index also forgets
        the list order of the segments it wrote (their rows stay in that order, which an
        exact scan does not care about), so a later IVF index lays every segment out again
        with its own centroids."""
        entry = next((d for d in self.manifest["indexes"] if d["index_name"] == index_name),
                     None)
        if entry is None:
            return False
        field = entry["field_name"]
        m = copy.deepcopy(self.manifest)
        m["indexes"] = [d for d in m["indexes"] if d["index_name"] != index_name]
        stale = []
        for s in m["segments"]:
            if s.get("ivf") == field:
                del s["ivf"]
                path = ivf.offsets_path(self.segment_dir(s["id"]), self.stems[field])
                s["files"].pop(path.name, None)
                stale.append(path)
        try:
            write_manifest(self.path, m)
        except OSError as e:
            raise WriteFailed(str(self.path / MANIFEST), e, "The index was not dropped: free "
                              "disk space and retry") from e
        self.manifest = m
        self.centroids.pop(field, None)
        for seg in self.sealed:
            if seg.ivf_field == field:
                seg.ivf_field, seg.ivf_offsets = None, None
        if entry.get("trained"):
            stale.append(ivf.centroid_path(self.path, entry["index_id"]))
        for path in stale:
            path.unlink(missing_ok=True)
        return True

    def adopt_new_segments(self) -> list[SealedSegment]:
        """Open segments that the manifest on disk lists and this process does not know yet
        (written by a bulk import or another tool); returns them."""
        on_disk = read_manifest(self.path)
        known = {s.id for s in self.sealed}
        new_meta = [m for m in on_disk["segments"] if m["id"] not in known]
        if not new_meta:
            return []
        self.manifest["segments"] += new_meta
        self.manifest["next_segment_id"] = max(self.manifest["next_segment_id"],
                                               on_disk["next_segment_id"])
        added = [self._open_segment(m, []) for m in new_meta]
        self.sealed += added
        return added

    def save_manifest(self) -> None:
        """Replace the manifest on disk with ``self.manifest``. If the disk refuses, the
        in-memory manifest goes back to the one on disk, so the change is undone in both
        places, and WriteFailed says so."""
        try:
            write_manifest(self.path, self.manifest)
        except OSError as e:
            try:
                self.manifest = read_manifest(self.path)
            except (OSError, ValueError):
                pass  # the error below still says the change was not saved
            raise WriteFailed(str(self.path / MANIFEST), e, "The change was not saved and is "
                              "undone: free disk space and retry") from e

    # -- reads ------------------------------------------------------------------------
    def row_count(self) -> int:
        return sum(s.live_rows for s in self.sealed) + sum(
            g.live_rows for g in self.growing.values())

    def segment_meta(self, seg_id: int) -> dict:
        for s in self.manifest["segments"]:
            if s["id"] == seg_id:
                return s
        raise KeyError(seg_id)

    @property
    def partitions(self) -> list[str]:
        return list(self.manifest["partitions"])

    def close(self) -> None:
        self.wal.close()

    def drop_partition_data(self, partition: str) -> None:
        self.flush()
        m = self.manifest
        gone = [s["id"] for s in m["segments"] if s["partition"] == partition]
        m["segments"] = [s for s in m["segments"] if s["partition"] != partition]
        m["partitions"].remove(partition)
        self.save_manifest()
        self.sealed = [s for s in self.sealed if s.partition != partition]
        for seg_id in gone:
            shutil.rmtree(self.segment_dir(seg_id), ignore_errors=True)

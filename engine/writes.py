"""What a write request turns into: the batch an insert or upsert logs, and the keys a
delete removes (given, or matched by a filter in any load state)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from . import search as _search
from .collection import Collection
from .columns import REPLACED_KEYS, Batch, auto_keys, first_duplicate, to_batch
from .errors import DataError, ParamError
from .expr import compile_filter
from .loader import Loader, LoadState, Resident
from .resident import loaded_names
from .schema import DataType
from .storage.wal import Kind


def batch_of(coll: Collection, data: Any, kind: Kind) -> Batch | None:
    """The validated batch an insert or upsert of ``data`` logs (None: no rows). An upsert
    into an auto_id collection gets new keys and remembers the given ones to replace, as
    Milvus does."""
    if isinstance(data, list) and not data:  # as pymilvus: nothing to write, count 0
        return None
    batch = to_batch(coll.schema, data, auto_id_base=coll.next_seq() << 32,
                     keys_given=kind == Kind.UPSERT)
    if batch.num_rows == 0:
        return None
    if kind == Kind.UPSERT:
        dup = first_duplicate(batch.cols[coll.pk.name])
        if dup is not None:  # which row should win is not defined: refuse (Milvus 2.6)
            raise DataError(f"upsert holds primary key {dup!r} more than once: give each key "
                            "at most once per upsert call")
        if coll.schema.auto_id:
            batch.cols[REPLACED_KEYS] = batch.cols[coll.pk.name]
            batch.cols[coll.pk.name] = auto_keys(coll.pk, coll.next_seq() << 32,
                                                 batch.num_rows)
    return batch


def key_list(column: Any) -> list:
    """A key column as Python values."""
    return column.tolist() if isinstance(column, torch.Tensor) else column.to_pylist()


def keys_of(coll: Collection, ids: Any) -> Any:
    """User-given primary keys as a key column of the collection's pk type (ParamError if
    they are not of that type)."""
    if isinstance(ids, (int, str, np.integer)):
        ids = [ids]
    if isinstance(ids, (np.ndarray, torch.Tensor)):
        ids = ids.tolist()
    ids = list(ids)
    if coll.pk.dtype == DataType.INT64:
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                   and -(1 << 63) <= i < (1 << 63) for i in ids):
            raise ParamError(f"primary key {coll.pk.name} is INT64: ids must be integers in "
                             "the int64 range")
        return torch.tensor(ids, dtype=torch.int64)
    if not all(isinstance(i, str) for i in ids):
        raise ParamError(f"primary key {coll.pk.name} is VARCHAR: ids must be strings")
    return pa.array(ids, type=pa.string())


def matching_keys(coll: Collection, res: Resident | None, filter: str, want: set[str],
                  params: dict | None) -> Any:
    """Primary keys of the live rows in partitions ``want`` matching ``filter``. Resident
    partitions are filtered where they are; the others (all of them when the collection
    is not loaded) on a transient host copy of the filter's fields, so a delete by filter
    works in any load state (API.md rule 1)."""
    loaded = res.partitions if res is not None and res.state == LoadState.Loaded \
        and not res.replacing else set()
    flt = compile_filter(filter, coll.schema, set(res.fields) if loaded else None, params)
    segs = res.all_segments(want & loaded) if loaded else []
    if want - loaded:
        names = [n for n in loaded_names(coll.schema, None, False)
                 if n == coll.pk.name or n in flt.fields]
        segs += Loader.snapshot(coll, names, want - loaded).all_segments(want - loaded)
    spec = _search.OutputSpec((coll.pk.name,), (), False)
    rows = _search.query(coll.schema, segs, flt, spec, None, None, 0)
    return keys_of(coll, [r[coll.pk.name] for r in rows])

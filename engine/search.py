"""Search and query over resident segments.

search: per segment, mask = live rows & filter -> exact top-k (kernels) -> merge across
segments on the device -> fetch the primary key and output fields of the winners only.
query: per segment, mask -> row indices -> the requested columns.
Output fields are limited to loaded fields (API.md rule 4): ``["*"]`` means every loaded
field, with the dynamic field's keys flattened into the row as Milvus does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .columns import column_to_python
from .errors import FieldNotFound, ParamError
from .expr import Filter
from .index.spec import DISTANCE_METRICS
from .index import VectorIndex
from .loader import Resident
from .resident import ResidentSegment
from .schema import DYNAMIC_FIELD, CollectionSchema
from .segment import match_keys
from .storage.segments import ShardRows

MAX_TOPK = 16384
# a search of at most this many queries x limit asks Ray workers for the output fields of
# their top-k with the scan (one round trip, for latency); a larger one asks for the
# merged winners' fields after (a second round trip, but no worker sends rows that lose)
FETCH_WITH_SCAN = 4096


@dataclass(frozen=True, slots=True)
class OutputSpec:
    fields: tuple[str, ...]          # schema fields to return
    dynamic_keys: tuple[str, ...]    # dynamic keys to return
    all_dynamic: bool                # flatten every dynamic key ("*" or "$meta")


def output_spec(schema: CollectionSchema, loaded: list[str], requested: list[str] | None,
                include_pk: bool) -> OutputSpec:
    requested = [requested] if isinstance(requested, str) else list(requested or [])
    fields: list[str] = [schema.primary.name] if include_pk else []
    keys: list[str] = []
    all_dynamic = False
    dynamic_on = DYNAMIC_FIELD in loaded
    for name in requested:
        if not isinstance(name, str):
            raise ParamError(f"output_fields must be field names, got {name!r}")
        if name == "*":
            fields += [n for n in loaded if n != DYNAMIC_FIELD]
            all_dynamic = all_dynamic or dynamic_on
            continue
        if name == DYNAMIC_FIELD:
            if not dynamic_on:
                raise ParamError(f"field {name} cannot be used since the dynamic field is not loaded")
            all_dynamic = True
            continue
        f = schema.field(name)
        if f is not None:
            if name not in loaded:
                raise ParamError(f"field {name} is not loaded: release the collection and load "
                                 "it with this field in load_fields")
            fields.append(name)
        elif schema.enable_dynamic_field:
            if not dynamic_on:
                raise ParamError(f"field {name} cannot be used since the dynamic field is not loaded")
            keys.append(name)
        else:
            raise FieldNotFound(name, "output_fields")
    return OutputSpec(tuple(dict.fromkeys(fields)), tuple(dict.fromkeys(keys)), all_dynamic)


def fetch_columns(schema: CollectionSchema, seg: ResidentSegment, idx: torch.Tensor,
                  spec: OutputSpec) -> dict[str, list]:
    """Python values of rows ``idx`` (int64, CPU) of ``seg``, one list per output field."""
    columns: dict[str, list] = {}
    dev_idx = idx.to(seg.device)
    np_idx = None
    for name in spec.fields:
        col = seg.exact[name] if name in seg.exact else seg.column(name)  # stored rows
        if isinstance(col, (torch.Tensor, ShardRows)):  # ShardRows: read from disk
            valid = seg.validity(name)
            columns[name] = column_to_python(schema.field(name), col[dev_idx].cpu(),
                                             None if valid is None else valid[dev_idx].cpu())
        else:
            np_idx = pa.array(idx.numpy()) if np_idx is None else np_idx
            columns[name] = column_to_python(schema.field(name), col.take(np_idx), None)
    return columns


def build_rows(seg: ResidentSegment, idx: torch.Tensor, columns: dict[str, list],
               names: list[str], spec: OutputSpec) -> list[dict]:
    """Row dicts of the fields ``names`` (from ``columns``) plus the dynamic keys the spec
    asks for (flattened into the row, as Milvus does)."""
    n = int(idx.numel())
    if names:
        rows = [dict(zip(names, vals)) for vals in zip(*(columns[k] for k in names))]
    else:
        rows = [{} for _ in range(n)]
    if spec.all_dynamic or spec.dynamic_keys:
        metas = seg.column(DYNAMIC_FIELD).take(pa.array(idx.numpy())).to_pylist()
        for row, text in zip(rows, metas):
            meta = json.loads(text) if text else {}
            if spec.all_dynamic:
                for k, v in meta.items():
                    row.setdefault(k, v)
            else:
                for k in spec.dynamic_keys:
                    if k in meta:
                        row[k] = meta[k]
    return rows


def fetch_rows(schema: CollectionSchema, seg: ResidentSegment, idx: torch.Tensor,
               spec: OutputSpec) -> list[dict]:
    """Row dicts for rows ``idx`` (int64, CPU) of ``seg``."""
    return fetch(schema, seg, idx, spec, list(spec.fields), True)[1]


def fetch(schema: CollectionSchema, seg: Any, idx: torch.Tensor, spec: OutputSpec,
          names: list[str], rows: bool) -> tuple[dict[str, list], list[dict] | None]:
    """The output columns of rows ``idx`` of ``seg`` and, if ``rows``, their row dicts of
    ``names``: read where the segment is (a segment on a Ray worker answers there)."""
    if getattr(seg, "remote", False):
        return seg.fetch(schema, idx, spec, names, rows)
    cols = fetch_columns(schema, seg, idx, spec)
    return cols, build_rows(seg, idx, cols, names, spec) if rows else None


def segment_rows(seg: Any, flt: Filter | None, ids: Any, pk: str) -> torch.Tensor:
    """Rows of ``seg`` (int64, CPU) that are live, pass ``flt`` and, with ``ids``, hold one
    of those primary keys."""
    if getattr(seg, "remote", False):
        return seg.rows(flt, ids, pk)
    mask = _segment_mask(seg, flt)
    if mask is None:
        mask = torch.ones(seg.num_rows, dtype=torch.bool, device=seg.device)
    if ids is not None:
        mask = mask & match_keys(seg.column(pk), ids).to(mask.device)
    return torch.nonzero(mask).flatten().cpu()


def segment_count(seg: Any, flt: Filter | None) -> int:
    if getattr(seg, "remote", False):
        return seg.count(flt)
    mask = _segment_mask(seg, flt)
    return seg.num_rows if mask is None else int(mask.sum())


def segment_keys(seg: Any, pk: str, idx: torch.Tensor) -> Any:
    """The primary keys of rows ``idx`` of ``seg``: int64 numpy or an Arrow array."""
    if getattr(seg, "remote", False):
        return seg.keys(pk, idx)
    col = seg.column(pk)
    if isinstance(col, torch.Tensor):
        return col[idx.to(col.device)].cpu().numpy()
    return col.take(pa.array(idx.numpy()))


def scan_segment(q: torch.Tensor, seg: ResidentSegment, field_name: str, limit: int,
                 flt: Filter | None, plan: "Plan") -> tuple[torch.Tensor, torch.Tensor]:
    """A local segment's (nq, k) internal distances and rows (the search a worker runs)."""
    return _scan(q, seg, field_name, limit, _segment_mask(seg, flt), plan)


def _segment_mask(seg: ResidentSegment, flt: Filter | None) -> torch.Tensor | None:
    """Rows a scan may return: live and passing the filter; None when that is every row."""
    mask = seg.live_mask_or_none()
    if flt is not None:
        fm = flt.mask(seg)
        mask = fm if mask is None else mask & fm
    return mask


@dataclass(frozen=True, slots=True)
class Plan:
    """How to scan: the metric, the vector index type and its per-batch probe (None: an
    exact scan), and the range bounds on the internal distance (smaller is better): keep
    ``lo <= d < hi``."""

    metric: str
    index: VectorIndex
    probe: Any = None
    lo: float | None = None
    hi: float | None = None


def range_bounds(metric: str, params: dict) -> tuple[float | None, float | None]:
    """Milvus range search: L2 keeps range_filter <= distance < radius; IP and COSINE keep
    radius < similarity <= range_filter. Internally similarity s is the distance -s."""
    radius, rfilter = params.get("radius"), params.get("range_filter")
    for name, v in (("radius", radius), ("range_filter", rfilter)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ParamError(f"{name} must be a number, got {v!r}")
    if radius is None:
        if rfilter is not None:
            raise ParamError("range_filter needs radius: give both for a range search")
        return None, None
    if metric in DISTANCE_METRICS:
        if rfilter is not None and rfilter >= radius:
            raise ParamError(f"range_filter ({rfilter}) must be less than radius ({radius}) "
                             f"for {metric}")
        return (None if rfilter is None else float(rfilter)), float(radius)
    if rfilter is not None and rfilter <= radius:
        raise ParamError(f"range_filter ({rfilter}) must be greater than radius ({radius}) "
                         f"for {metric}")
    return (None if rfilter is None else -float(rfilter)), -float(radius)


def _on(obj: Any, device: torch.device) -> Any:
    """``obj`` (a tensor, or a probe made of tensors) on ``device``: what a worker scans
    with when the coordinator made it elsewhere (nothing moves when the devices match)."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.device == device else obj.to(device)
    if isinstance(obj, dict):
        return {k: _on(v, device) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _on(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj)})
    return obj


def on_device(plan: "Plan", device: torch.device) -> "Plan":
    """``plan`` with its probe on ``device`` (a worker's)."""
    return dataclasses.replace(plan, probe=_on(plan.probe, device))


def _scan(q: torch.Tensor, seg: ResidentSegment, field_name: str, limit: int,
          mask: torch.Tensor, plan: Plan) -> tuple[torch.Tensor, torch.Tensor]:
    """One segment's top-k, scanned on its worker's device, returned on ``q``'s (the
    coordinator's) for the merge."""
    home = q.device if isinstance(q, torch.Tensor) else None
    if home is not None and home != seg.device:
        d, i = _scan(q.to(seg.device), seg, field_name, limit, mask,
                     on_device(plan, seg.device))
        return d.to(home), i.to(home)
    x = seg.column(field_name)
    has = seg.validity(field_name)  # a nullable vector: null rows are never hits
    if has is not None:
        mask = has if mask is None else mask & has
    layout = seg.layouts.get(field_name)
    x_sq = seg.norms(field_name) if plan.metric in ("L2", "COSINE") \
        and plan.index.uses_norms(layout) else None
    return plan.index.scan(q, x, layout, plan.probe, limit, plan.metric, mask, plan.lo,
                           plan.hi, x_sq)


def search(res: Resident, segs: list[ResidentSegment], field_name: str, plan: Plan,
           queries: torch.Tensor, limit: int, flt: Filter | None, spec: OutputSpec,
           round_decimal: int = -1) -> list[list[dict]]:
    """One list of hits per query, best first. ``round_decimal`` >= 0 rounds the returned
    distances to that many decimals (pymilvus's round_decimal; -1 leaves them)."""
    metric = plan.metric
    schema = res.collection.schema
    pk = schema.primary.name
    nq = len(queries)  # a (nq, d) tensor, or a sparse field's CSR rows
    if not segs:
        return [[] for _ in range(nq)]
    out_spec = OutputSpec((pk, *[f for f in spec.fields if f != pk]), spec.dynamic_keys,
                          spec.all_dynamic)
    names, has_entity = _shown(out_spec, keep_pk=pk in spec.fields)
    ds, ids, owners = [], [], []
    # segments on Ray workers first (one call a worker): they scan while the local ones do
    remote = [si for si, seg in enumerate(segs) if getattr(seg, "remote", False)
              and seg.num_rows]
    asked = None
    if remote:  # small batches: the output of their top-k comes back with it (one round
        # trip); large ones: their keys only, the winners' fields asked for after the merge
        out = (schema, out_spec, names, has_entity) if nq * limit <= FETCH_WITH_SCAN else \
            (schema, OutputSpec((pk,), (), False), [], False)
        asked = segs[remote[0]].scan_many([segs[si] for si in remote], queries, field_name,
                                          limit, flt, plan, out)
    known: dict[int, tuple] = {}  # a Ray worker's found rows and their output
    for si, seg in enumerate(segs):
        if seg.num_rows == 0 or si in remote:
            continue
        d, i = scan_segment(queries, seg, field_name, limit, flt, plan)  # (nq, k), (nq, k)
        ds.append(d)
        ids.append(i)
        owners.append(si)
    for si, (d, i, *found) in zip(remote, asked.wait() if asked else []):
        known[si] = found
        ds.append(d.to(queries.device))
        ids.append(i.to(queries.device))
        owners.append(si)
    if not ds:
        return [[] for _ in range(nq)]
    if len(ds) == 1:  # one segment scanned: its top-k is already the answer
        best, rows, seg_of = ds[0], ids[0].cpu(), None
        only = owners[0]
    else:
        d = torch.cat(ds, dim=1)
        kk = min(limit, d.shape[1])
        best, pos = torch.topk(d, kk, dim=1, largest=False, sorted=True)  # (nq, k)
        rows = torch.gather(torch.cat(ids, dim=1), 1, pos).cpu()
        widths = torch.tensor([i.shape[1] for i in ids])
        seg_of = torch.repeat_interleave(torch.tensor(owners), widths)[pos.cpu()]  # (nq, k)
        only = None
    best = best.cpu()
    valid = torch.isfinite(best) & (rows >= 0)
    dist = best if metric in DISTANCE_METRICS else -best
    if round_decimal >= 0:
        dist = torch.round(dist.double(), decimals=round_decimal)  # 0.123, not 0.12300000339
    with _gc_paused():
        return _assemble(schema, segs, valid, rows, seg_of, only, dist, out_spec,
                         keep_pk=pk in spec.fields, known=known)


@contextlib.contextmanager
def _gc_paused():
    """Build result rows without Python's cyclic collector: they hold no reference cycles,
    and with it on, each pass over the young objects promotes them until full collections
    walk everything built so far, which costs more than building the rows. It is
    switched back on after, if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _shown(out_spec: OutputSpec, keep_pk: bool) -> tuple[list[str], bool]:
    """The fields a hit's entity shows, and whether it has one at all."""
    names = [f for f in out_spec.fields if keep_pk or f != out_spec.fields[0]]
    return names, bool(names) or out_spec.all_dynamic or bool(out_spec.dynamic_keys)


def _assemble(schema: CollectionSchema, segs: list[ResidentSegment], valid: torch.Tensor,
              rows: torch.Tensor, seg_of: torch.Tensor | None, only: int | None,
              dist: torch.Tensor, out_spec: OutputSpec, keep_pk: bool,
              known: dict | None = None) -> list[list[dict]]:
    """(nq, k) winners -> one list of hit dicts per query. Works on the flat array of valid
    hits (query-major): each segment's rows are fetched once (unique rows only) and spread
    to their hits with numpy indexing, so the per-hit Python work is building its dict.
    ``seg_of`` (nq, k) says which segment each winner is in, or is None when every winner
    is in segment ``only``. ``known``: segment -> (rows, columns, row dicts) its Ray
    worker sent with its top-k (the rows it found, sorted; row dicts None when it sent
    keys only): hits it covers ask it nothing more."""
    pk = schema.primary.name
    counts = valid.sum(1).tolist()
    row_h = rows[valid]
    n = int(row_h.numel())
    pks = np.empty(n, dtype=object)
    ents = np.empty(n, dtype=object)
    names, has_entity = _shown(out_spec, keep_pk)
    if seg_of is None:
        groups = [(only, slice(None))]
    else:
        seg_h = seg_of[valid]
        groups = [(si, (seg_h == si).nonzero().squeeze(1).numpy())
                  for si in torch.unique(seg_h).tolist()]
    picked = []
    for si, where in groups:
        if valid.shape[0] == 1:  # one query: its winners are distinct rows
            uniq, inv = row_h[where], slice(None)
        else:
            uniq, inv = torch.unique(row_h[where], return_inverse=True)
            inv = inv.numpy()
        picked.append((si, where, uniq, inv))
    # segments on Ray workers are asked at once (one call a worker), then local ones read
    known = known or {}
    for j, (si, where, uniq, inv) in enumerate(picked):
        found = known.get(si)
        if found is not None and (found[2] is not None or not has_entity):
            picked[j] = (si, where, uniq, inv, _among(*found, uniq.numpy()))
    far = [(si, uniq) for si, _, uniq, _, *got in picked
           if getattr(segs[si], "remote", False) and not got]
    asked = dict(zip([si for si, _ in far], segs[far[0][0]].fetch_many(
        [(segs[si], uniq) for si, uniq in far], schema, out_spec, names,
        has_entity).wait())) if far else {}
    for si, where, uniq, inv, *got in picked:
        if got:
            cols, built = got[0]
        else:
            cols, built = asked[si] if si in asked else \
                fetch(schema, segs[si], uniq, out_spec, names, has_entity)
        pks[where] = _objects(cols[pk])[inv]
        if has_entity:
            ents[where] = _objects(built)[inv]
    dists = dist[valid].tolist()
    if has_entity:  # a dict of its own per hit: the same row may win for several queries
        flat = [{pk: p, "distance": d, "entity": dict(e)}
                for p, d, e in zip(pks.tolist(), dists, ents.tolist())]
    else:
        flat = [{pk: p, "distance": d, "entity": {}} for p, d in zip(pks.tolist(), dists)]
    out, start = [], 0
    for c in counts:
        out.append(flat[start:start + c])
        start += c
    return out


def _among(rows: np.ndarray, cols: dict, built: list | None,
           want: np.ndarray) -> tuple[dict, np.ndarray | None]:
    """The columns and row dicts of rows ``want``, out of those of ``rows`` (sorted,
    distinct; ``want`` among them)."""
    at = np.searchsorted(rows, want)
    return ({k: _objects(v)[at] for k, v in cols.items()},
            None if built is None else _objects(built)[at])


def _objects(values: list) -> np.ndarray:
    """A 1-D object array holding ``values`` as they are (lists and dicts stay elements)."""
    return np.fromiter(values, dtype=object, count=len(values))


def query(schema: CollectionSchema, segs: list[ResidentSegment], flt: Filter | None,
          spec: OutputSpec, ids: Any, limit: int | None, offset: int) -> list[dict]:
    with _gc_paused():
        return _query_rows(schema, segs, flt, spec, ids, limit, offset)


def _query_rows(schema: CollectionSchema, segs: list[ResidentSegment], flt: Filter | None,
                spec: OutputSpec, ids: Any, limit: int | None, offset: int) -> list[dict]:
    """Matching rows. With a limit or an offset they come in primary-key order, as Milvus
    returns them, so paging with ``pk > last`` (pymilvus's query_iterator) sees every row
    once whatever order the segments store their rows in (IVF list order, say)."""
    picks: list[tuple[ResidentSegment, torch.Tensor]] = []
    for seg in segs:
        if seg.num_rows == 0:
            continue
        idx = segment_rows(seg, flt, ids, schema.primary.name)
        if idx.numel():
            picks.append((seg, idx))
    if limit is None and not offset:
        return [row for seg, idx in picks for row in fetch_rows(schema, seg, idx, spec)]
    if not picks:
        return []
    keys = _keys_of(schema, picks)
    order = (np.argsort(keys, kind="stable") if isinstance(keys, np.ndarray)
             else pc.sort_indices(keys).to_numpy())
    stop = None if limit is None else offset + limit
    order = order[offset:stop]
    which = np.repeat(np.arange(len(picks)), [idx.numel() for _, idx in picks])[order]
    local = torch.cat([idx for _, idx in picks]).numpy()[order]
    out: list[Any] = [None] * len(order)
    for j, (seg, _) in enumerate(picks):
        slots = np.flatnonzero(which == j)
        if slots.size:
            rows = fetch_rows(schema, seg, torch.from_numpy(local[slots]), spec)
            for slot, row in zip(slots.tolist(), rows):
                out[slot] = row
    return out


def _keys_of(schema: CollectionSchema, picks: list) -> Any:
    """The primary keys of the picked rows, concatenated: int64 numpy or an Arrow array."""
    parts = [segment_keys(seg, schema.primary.name, idx) for seg, idx in picks]
    return np.concatenate(parts) if isinstance(parts[0], np.ndarray) else pa.concat_arrays(parts)


def count(segs: list[ResidentSegment], flt: Filter | None) -> int:
    return sum(segment_count(seg, flt) for seg in segs if seg.num_rows)

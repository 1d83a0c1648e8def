"""Search and query requests: their arguments checked and turned into a scan of the
resident copy (search.py does the scan). Every front end reaches these through the
database, so limits, defaults, ``count(*)`` and refusals are decided once, here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import rerank, sparse
from . import search as _search
from .collection import Collection
from .columns import binary_rows, int8_rows
from .errors import FieldNotFound, IndexNotFound, ParamError
from .expr import compile_filter
from .grouping import grouped, grouping_of
from .loader import Resident
from .residency import Residency
from .schema import DataType
from .writes import keys_of

MAX_NQ = 16384

# pymilvus search keywords for features Hotset does not have: refused, never ignored.
UNSUPPORTED_SEARCH = ("group_by_fields", "search_aggregation", "order_by_fields",
                      "rank_group_scorer")
GROUPING = ("group_by_field", "group_size", "strict_group_size")
# The options search and query read (SearchRequest.options, query's options); the
# unsupported ones are read to be refused with their own message.
SEARCH_OPTIONS = ("metric_type", "offset", "round_decimal", "ignore_growing", "filter_params",
                  "ranker", "function_score", *GROUPING, *UNSUPPORTED_SEARCH)
QUERY_OPTIONS = ("limit", "offset", "filter_params", "ignore_growing")


@dataclass(frozen=True, slots=True)
class SearchRequest:
    data: Any
    filter: str = ""
    limit: int = 10
    output_fields: Any = None
    search_params: dict | None = None
    partition_names: list[str] | None = None
    anns_field: str | None = None
    options: dict | None = None  # pymilvus's other keywords (offset, round_decimal, ...)


def _refuse_unsupported(options: dict) -> None:
    for name in UNSUPPORTED_SEARCH:
        if options.get(name) not in (None, [], ""):
            hint = (" (group_by_field groups by one field)" if name == "group_by_fields"
                    else "")
            raise ParamError(f"{name} is not supported by Hotset's search: leave it out{hint}")


def round_decimal_of(value: Any) -> int:
    """pymilvus's round_decimal: -1 (the default) keeps distances as they are, 0..6 rounds
    them to that many decimals."""
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 6:
        raise ParamError(f"round_decimal must be an integer from -1 (no rounding) to 6, "
                         f"got {value!r}")
    return value


def offset_of(value: Any) -> int:
    """pymilvus's offset: a non-negative integer (None or 0: from the first hit)."""
    value = value or 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParamError(f"offset must be a non-negative integer, got {value!r}")
    return int(value)


def search(residency: Residency, coll: Collection, req: SearchRequest) -> list[list[dict]]:
    res = residency.loaded(coll)
    opts = req.options or {}
    field = _anns_field(coll, res, req.anns_field)
    entry, index = coll.vector_index(field.name)
    metric = entry["metric_type"]
    params = dict(req.search_params or {})
    asked = params.get("metric_type") or opts.get("metric_type")
    if asked and str(asked).upper() != metric:
        raise ParamError(f"metric type not match: expected={metric}, actual="
                         f"{str(asked).upper()}; search with the index's metric or rebuild "
                         "the index")
    offset = offset_of(params.get("offset", opts.get("offset", 0)))
    limit = req.limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1 or \
            limit + offset > _search.MAX_TOPK:
        raise ParamError(f"limit (topk) should be in range [1, {_search.MAX_TOPK}], got "
                         f"limit={limit}, offset={offset}")
    _refuse_unsupported(opts)
    decimals = round_decimal_of(opts.get("round_decimal", -1))
    growing = not (params.get("ignore_growing") or opts.get("ignore_growing"))
    q = _queries(req.data, field, residency.allocator.device)
    flt = compile_filter(req.filter, coll.schema, set(res.fields), opts.get("filter_params"))
    group = grouping_of(coll, res.fields, opts)
    wanted = req.output_fields
    fs = rerank.function_score_of(opts.get("ranker") or opts.get("function_score"))
    if fs is not None:
        if group is not None:
            raise ParamError("a ranker cannot be used with group_by_field (nor in Milvus): "
                             "search without one of them")
        return _reranked(residency, coll, res, req, fs, field.name, metric, limit, offset,
                         decimals)
    if group is not None:  # the group's value comes back with each hit, as in Milvus
        if offset:
            raise ParamError("offset is not supported with group_by_field: page by raising "
                             "limit")
        wanted = [wanted] if isinstance(wanted, str) else list(wanted or [])
        wanted = [*wanted, group.field] if group.field not in wanted else wanted
    out = _search.output_spec(coll.schema, res.fields, wanted, include_pk=False)
    parts = residency.searched_partitions(res, req.partition_names)
    scan_params = params.get("params") or {}
    if not isinstance(scan_params, dict):
        raise ParamError(f"search_params['params'] must be a dict, got {scan_params!r}")
    lo, hi = _search.range_bounds(metric, scan_params)
    probe = index.probe(q, res.index_parts.get(field.name, {}), entry["engine_params"],
                        scan_params, metric)
    plan = _search.Plan(metric, index, probe, lo, hi)
    segs = res.all_segments(parts, growing)
    if group is not None:
        return grouped(lambda k: _search.search(res, segs, field.name, plan, q, k, flt, out,
                                                decimals), limit, group)
    hits = _search.search(res, segs, field.name, plan, q, limit + offset, flt, out, decimals)
    return [h[offset:] for h in hits] if offset else hits


def _reranked(residency: Residency, coll: Collection, res: Resident, req: SearchRequest,
              fs: rerank.FunctionScore, field: str, metric: str, limit: int, offset: int,
              decimals: int) -> list[list[dict]]:
    """The ``limit + offset`` best hits by similarity, re-sorted by their function score
    (rerank.py)."""
    hits = search(residency, coll, SearchRequest(
        req.data, req.filter, limit + offset, req.output_fields,
        {k: v for k, v in (req.search_params or {}).items() if k != "offset"},
        req.partition_names, field,
        {k: v for k, v in (req.options or {}).items()
         if k not in ("ranker", "function_score", "round_decimal", "offset")}))
    flat = [h for per in hits for h in per]
    if not flat:
        return hits
    pk = coll.pk.name
    rel = rerank.relevance(np.array([h["distance"] for h in flat], dtype=np.float64), metric)
    values, matched = function_inputs(residency, coll, res, fs, [h[pk] for h in flat],
                                      req.partition_names)
    final = rerank.final_scores(fs, rel, values, matched)
    shown = np.round(final, decimals) if decimals >= 0 else final  # ranked unrounded
    out, start = [], 0
    for per in hits:
        order = np.argsort(-final[start:start + len(per)], kind="stable")[offset:offset + limit]
        out.append([{**per[i], "distance": float(shown[start + i])} for i in order.tolist()])
        start += len(per)
    return out


def function_inputs(residency: Residency, coll: Collection, res: Resident,
                    fs: rerank.FunctionScore, keys: list, partition_names: list[str] | None
                    ) -> tuple[dict[str, np.ndarray], list[np.ndarray | None]]:
    """What a function score reads of each candidate (``keys``, one per candidate): each
    decay field's values (NaN for null) and, per boost, whether its filter matches (None:
    it has none). One query per input over the distinct keys."""
    for name in fs.fields:
        f = coll.schema.field(name)
        if f is None or not f.is_numeric:
            raise ParamError(f"a decay reranker needs a numeric field (INT8..INT64, FLOAT, "
                             f"DOUBLE); {name} is not one")
        if name not in res.fields:
            raise ParamError(f"field {name} is not loaded: release the collection and load "
                             "it with this field in load_fields")
    pk = coll.pk.name
    distinct = list(dict.fromkeys(keys))
    values: dict[str, np.ndarray] = {}
    if fs.fields:
        rows = {r[pk]: r for r in query(residency, coll, "", list(fs.fields), distinct,
                                        partition_names, {})}
        values = {n: np.array([rows.get(k, {}).get(n) for k in keys], dtype=np.float64)
                  for n in fs.fields}
    matched: list[np.ndarray | None] = []
    for f in fs.functions:
        if isinstance(f, rerank.Boost):
            if not f.filter:
                matched.append(None)
                continue
            hit = {r[pk] for r in query(residency, coll, f.filter, [pk], distinct,
                                        partition_names, {})}
            matched.append(np.fromiter((k in hit for k in keys), bool, len(keys)))
    return values, matched


def _anns_field(coll: Collection, res: Resident, anns_field: str | None):
    vectors = coll.schema.vector_fields
    if anns_field:
        f = coll.schema.field(anns_field)
        if f is None or not f.is_vector:
            raise FieldNotFound(anns_field, "anns_field (a vector field)")
    elif len(vectors) == 1:
        f = vectors[0]
    else:
        raise ParamError(f"collection {coll.name} has {len(vectors)} vector fields: name the "
                         "one to search with anns_field=")
    if f.name not in res.fields:
        raise ParamError(f"field {f.name} is not loaded: release the collection and load it "
                         "with this field in load_fields")
    if coll.manifest.index_on(f.name) is None:
        raise IndexNotFound(coll.name, f"field {f.name}")
    return f


def _queries(data: Any, field: Any, device: torch.device) -> Any:
    """Search data as the scan takes it: (nq, d) tensors, or CSR rows for a sparse field."""
    if field.is_sparse:
        return sparse.queries(data, MAX_NQ, ParamError).to(device)
    if field.dtype == DataType.BINARY_VECTOR:  # packed bytes, scanned as they are
        rows = binary_rows(data, field.width, "search data", ParamError)
        if rows.shape[0] == 0 or rows.shape[0] > MAX_NQ:
            raise ParamError(f"nq (number of search vectors) should be in range [1, "
                             f"{MAX_NQ}], got {rows.shape[0]}")
        return torch.from_numpy(rows).to(device)
    try:
        if isinstance(data, torch.Tensor):
            arr = data.detach().float().cpu().numpy()
        else:
            arr = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError):
        raise ParamError(f"search data must be a list of {field.dim}-dimensional vectors") from None
    if arr.ndim == 1 and arr.size:
        arr = arr[None, :]
    if arr.size == 0 or arr.shape[0] > MAX_NQ:
        raise ParamError(f"nq (number of search vectors) should be in range [1, {MAX_NQ}], "
                         f"got {0 if arr.size == 0 else arr.shape[0]}")
    if arr.ndim != 2 or arr.shape[1] != field.dim:
        got = arr.shape[-1] if arr.ndim >= 1 else 0
        raise ParamError(f"the dim ({got}) of search data is not equal to the dim "
                         f"({field.dim}) of field {field.name}")
    if not np.isfinite(arr).all():
        row = int((~np.isfinite(arr)).any(1).nonzero()[0][0])
        raise ParamError(f"search vector {row} holds NaN or infinity: no distance to it can "
                         "be ranked; give finite numbers")
    if field.dtype == DataType.INT8_VECTOR:  # scanned in float32, which holds them exactly
        arr = int8_rows(arr, "search data", ParamError).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr)).to(device)


def is_count(output_fields: Any) -> bool:
    """Whether the output fields ask for ``count(*)`` (Milvus's spelling, any spacing)."""
    if not output_fields or isinstance(output_fields, str):
        return isinstance(output_fields, str) and \
            output_fields.replace(" ", "").lower() == "count(*)"
    return [str(o).replace(" ", "").lower() for o in output_fields] == ["count(*)"]


def query(residency: Residency, coll: Collection, filter: str, output_fields: Any, ids: Any,
          partition_names: list[str] | None, options: dict) -> list[dict]:
    limit = options.get("limit")
    offset = offset_of(options.get("offset", 0))
    res = residency.loaded(coll)
    flt = compile_filter(filter, coll.schema, set(res.fields), options.get("filter_params"))
    parts = residency.searched_partitions(res, partition_names)
    segs = res.all_segments(parts, growing=not options.get("ignore_growing"))
    keys = keys_of(coll, ids) if ids is not None else None
    if is_count(output_fields):
        if keys is None:
            return [{"count(*)": _search.count(segs, flt)}]
        spec = _search.OutputSpec((coll.pk.name,), (), False)
        return [{"count(*)": len(_search.query(coll.schema, segs, flt, spec, keys, None, 0))}]
    if flt is None and ids is None and limit is None:
        raise ParamError("empty expression should be used with limit: give a filter, ids= or "
                         "limit=")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise ParamError(f"limit must be a non-negative integer, got {limit!r}")
    if limit is not None and limit + offset > _search.MAX_TOPK:
        raise ParamError(f"invalid max query result window, (offset+limit) should be in "
                         f"range [1, {_search.MAX_TOPK}], but got {limit + offset}")
    spec = _search.output_spec(coll.schema, res.fields, output_fields, include_pk=True)
    return _search.query(coll.schema, segs, flt, spec, keys, limit, offset)

"""Hybrid search: several searches of one collection (each its own vector field, query
vectors, filter and limit), fused into one ranking by a ranker, as Milvus computes it.

- ``RRFRanker(k)``: a hit's score is the sum over the searches that returned it of
  ``1 / (k + rank)``, rank counted from 1 in that search's result.
- ``WeightedRanker(*weights, norm_score=True)``: the sum of ``weight_i * s_i``, where
  ``s_i`` is the hit's score in search i, normalised to [0, 1] by its metric when
  ``norm_score`` (COSINE ``(1 + s) / 2``, IP ``1/2 + atan(s) / pi``, L2
  ``1 - 2 atan(d) / pi``) and taken as it is otherwise.
- a function score (decay and boost rerankers, ``rerank.py``): Milvus's rule for hybrid
  search, the best relevance any search gave the hit (IP and COSINE as they are,
  distances ``1 - 2 atan(d) / pi``), then the functions applied to it.

Hits are ordered by fused score, highest first; ``offset`` and ``limit`` apply after the
fusion, and output fields are fetched for the winners only. Any object with the attributes
of pymilvus's ``AnnSearchRequest`` (``data``, ``anns_field``, ``param``, ``limit``,
``expr``) and rankers with pymilvus's ``dict()`` form are accepted too.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reads, rerank
from .collection import Collection
from .errors import ParamError
from .residency import Residency
from .search import MAX_TOPK

MAX_REQUESTS = 1024
OPTIONS = ("offset", "round_decimal")  # what hybrid_search reads of its options


@dataclass(frozen=True)
class AnnSearchRequest:
    """One search of a hybrid search (pymilvus's ``AnnSearchRequest``)."""

    data: Any
    anns_field: str
    param: dict = field(default_factory=dict)
    limit: int = 10
    expr: str | None = None
    expr_params: dict | None = None


class RRFRanker:
    def __init__(self, k: int = 60) -> None:
        self.k = k

    def dict(self) -> dict:
        return {"strategy": "rrf", "params": {"k": self.k}}


class WeightedRanker:
    def __init__(self, *weights: float, norm_score: bool = True) -> None:
        self.weights = list(weights)
        self.norm_score = norm_score

    def dict(self) -> dict:
        return {"strategy": "weighted",
                "params": {"weights": self.weights, "norm_score": self.norm_score}}


@dataclass(frozen=True)
class Ranker:
    """A ranker's checked form."""

    strategy: str          # "rrf" | "weighted" | "function" (decay, boost: rerank.py)
    k: float = 60.0
    weights: tuple[float, ...] = ()
    norm_score: bool = True


def ranker_of(ranker: Any, n_requests: int) -> Ranker:
    """Check a ranker (an object with ``dict()``, or that dict) against ``n_requests``."""
    d = ranker.dict() if hasattr(ranker, "dict") else ranker
    if not isinstance(d, dict) or not isinstance(d.get("params", {}), dict):
        raise ParamError("ranker must be RRFRanker(k) or WeightedRanker(*weights): model "
                         "and decay rerankers are not supported by Hotset's hybrid search")
    strategy = str(d.get("strategy", "")).lower()
    params = d.get("params") or {}
    if strategy == "rrf":
        k = params.get("k", 60)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < 16384:
            raise ParamError(f"The rank params k should be in range (0, 16384), got {k!r}")
        return Ranker("rrf", k=float(k))
    if strategy == "weighted":
        weights = params.get("weights")
        if not isinstance(weights, list) or len(weights) != n_requests:
            raise ParamError(f"the length of weights param mismatch with ann search requests: "
                             f"{n_requests} searches, weights {weights!r}")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1:
                raise ParamError(f"rank param weight should be in range [0, 1], got {w!r}")
        return Ranker("weighted", weights=tuple(float(w) for w in weights),
                      norm_score=bool(params.get("norm_score", True)))
    raise ParamError(f"unsupported ranker strategy {strategy!r}: use RRFRanker or "
                     "WeightedRanker (model and decay rerankers are not supported)")


def _normalise(scores: np.ndarray, metric: str) -> np.ndarray:
    if metric == "COSINE":
        return (1.0 + scores) * 0.5
    if metric == "IP":
        return 0.5 + np.arctan(scores) / math.pi
    return 1.0 - 2.0 * np.arctan(scores) / math.pi  # L2, HAMMING, JACCARD: smaller is better


def hybrid_search(residency: Residency, coll: Collection, requests: list[Any], ranker: Any,
                  limit: int, output_fields: Any, partition_names: list[str] | None,
                  options: dict) -> list[list[dict]]:
    if not isinstance(requests, (list, tuple)) or not requests:
        raise ParamError("hybrid_search needs a list of AnnSearchRequest")
    if len(requests) > MAX_REQUESTS:
        raise ParamError(f"at most {MAX_REQUESTS} searches in one hybrid_search, got "
                         f"{len(requests)}")
    fs = rerank.function_score_of(ranker) if _is_function(ranker) else None
    rk = ranker_of(ranker, len(requests)) if fs is None else Ranker("function")
    offset = reads.offset_of(options.get("offset", 0))
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1 or \
            limit + offset > MAX_TOPK:
        raise ParamError(f"limit (topk) should be in range [1, {MAX_TOPK}], got "
                         f"limit={limit}, offset={offset}")
    decimals = reads.round_decimal_of(options.get("round_decimal", -1))
    pk = coll.pk.name
    pks, qidx, scores = [], [], []
    nq = None
    for i, r in enumerate(requests):
        for attr in ("data", "anns_field"):
            if not hasattr(r, attr):
                raise ParamError(f"hybrid_search request {i} is not an AnnSearchRequest")
        param = dict(getattr(r, "param", None) or {})
        sub = reads.SearchRequest(r.data, getattr(r, "expr", None) or "",
                                  getattr(r, "limit", 10), None, param, partition_names,
                                  r.anns_field,
                                  {"filter_params": getattr(r, "expr_params", None)})
        hits = reads.search(residency, coll, sub)
        if nq is None:
            nq = len(hits)
        elif len(hits) != nq:
            raise ParamError(f"every search of a hybrid_search needs the same number of "
                             f"query vectors: request {i} has {len(hits)}, request 0 {nq}")
        counts = np.array([len(h) for h in hits], dtype=np.int64)
        flat = [h for per in hits for h in per]
        if not flat:
            continue
        pks.append(np.array([h[pk] for h in flat], dtype=object))
        qidx.append(np.repeat(np.arange(nq), counts))
        dist = np.array([h["distance"] for h in flat], dtype=np.float64)
        if rk.strategy == "rrf":
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            rank = np.arange(len(flat)) - starts + 1
            scores.append(1.0 / (rk.k + rank))
        elif fs is not None:  # Milvus: the best relevance of the searches, then functions
            scores.append(rerank.relevance(dist, coll.vector_index(r.anns_field)[0][
                "metric_type"]))
        else:
            metric = coll.vector_index(r.anns_field)[0]["metric_type"]
            s = _normalise(dist, metric) if rk.norm_score else dist
            scores.append(rk.weights[i] * s)
    nq = nq or 0
    if not pks:
        return [[] for _ in range(nq)]
    return _fused(residency, coll, np.concatenate(pks), np.concatenate(qidx),
                  np.concatenate(scores), nq, limit, offset, output_fields, partition_names,
                  decimals, fs)


def _is_function(ranker: Any) -> bool:
    """A function score (decay, boost; a pymilvus Function or FunctionScore) rather than
    RRFRanker / WeightedRanker."""
    if hasattr(ranker, "functions") or hasattr(ranker, "input_field_names"):
        return True
    return isinstance(ranker, dict) and ("functions" in ranker or "reranker" in (
        ranker.get("params") or {}))


def _fused(residency: Residency, coll: Collection, pks: np.ndarray, qidx: np.ndarray,
           scores: np.ndarray, nq: int, limit: int, offset: int, output_fields: Any,
           partition_names: list[str] | None, decimals: int,
           fs: rerank.FunctionScore | None = None) -> list[list[dict]]:
    """Sum the scores of each (query, key) (a function score: take their best and apply
    the functions), rank per query, fetch the winners' fields."""
    uniq, code = np.unique(pks, return_inverse=True)
    combo, inv = np.unique(qidx * len(uniq) + code, return_inverse=True)
    if fs is None:
        total = np.bincount(inv, weights=scores)
    else:
        total = np.full(len(combo), -np.inf)
        np.maximum.at(total, inv, scores)
    q_of, key_of = combo // len(uniq), uniq[combo % len(uniq)]
    if fs is not None:
        values, matched = reads.function_inputs(residency, coll, residency.loaded(coll), fs,
                                                key_of.tolist(), partition_names)
        total = rerank.final_scores(fs, total, values, matched)
    order = np.lexsort((-total, q_of))  # by query, best score first
    q_of, key_of, total = q_of[order], key_of[order], total[order]
    bounds = np.searchsorted(q_of, np.arange(nq + 1))
    picks = [(bounds[q] + offset, min(bounds[q] + offset + limit, bounds[q + 1]))
             for q in range(nq)]
    winners = np.concatenate([key_of[a:b] for a, b in picks]) if picks else key_of[:0]
    entities: dict[Any, dict] = {}
    pk = coll.pk.name
    if output_fields and len(winners):
        rows = reads.query(residency, coll, "", output_fields, list(dict.fromkeys(
            winners.tolist())), partition_names, {})
        for row in rows:
            entities.setdefault(row[pk], {k: v for k, v in row.items() if k != pk})
        wanted = output_fields if isinstance(output_fields, list) else [output_fields]
        if pk in wanted or "*" in wanted:
            for key, ent in entities.items():
                ent[pk] = key
    if decimals >= 0:
        total = np.round(total, decimals)
    out = []
    for a, b in picks:
        out.append([{pk: key, "distance": float(s), "entity": dict(entities.get(key, {}))}
                    for key, s in zip(key_of[a:b].tolist(), total[a:b].tolist())])
    return out


def parse_rank_params(kv: dict[str, str]) -> tuple[dict, dict]:
    """The ranker dict and the options (limit, offset, round_decimal) of a gRPC
    HybridSearchRequest's ``rank_params`` (pymilvus sends the strategy as a plain string
    and the other values JSON-encoded)."""
    def load(key: str, default: Any) -> Any:
        if key not in kv:
            return default
        try:
            return json.loads(kv[key])
        except ValueError:
            raise ParamError(f"rank_params {key} is not JSON: {kv[key][:64]!r}") from None

    ranker = {"strategy": kv.get("strategy", ""), "params": load("params", {})}
    return ranker, {"limit": load("limit", 10), "offset": load("offset", 0),
                    "round_decimal": load("round_decimal", -1)}

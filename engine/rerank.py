"""Function-score rerankers on search (``ranker=`` a pymilvus ``Function`` or
``FunctionScore``; gRPC ``function_score``; REST ``functionScore``), computed on the engine.

The search first takes the ``limit + offset`` best hits by similarity, as Milvus does; each
hit then gets a final score and the hits are re-sorted by it (higher is better; it is what
``distance`` holds in the answer):

- the relevance: the similarity as is for IP and COSINE, ``1 - 2·atan(d)/π`` for an L2
  distance ``d`` (Milvus's normalisation);
- each function's score: a **decay** (``reranker="decay"``, ``function`` ``gauss``, ``exp``
  or ``linear`` of one numeric field around ``origin``, with ``scale``, ``offset`` = 0 and
  ``decay`` = 0.5; Elasticsearch's formulas, which Milvus documents) or a **boost**
  (``reranker="boost"``: ``weight`` for hits matching ``filter``, every hit without one);
  a hit whose decay field is null scores 0 there;
- functions combine by ``function_mode`` (``multiply``, the default, or ``sum``; a hit that
  a boost's filter does not match takes that mode's identity), and with the relevance by
  ``boost_mode`` (``multiply`` or ``sum``).

Model rerankers call an outside model service and are refused, as are a boost's
``random_score`` (its values could not match Milvus's generator) and grouping with a
ranker (Milvus refuses it too).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ParamError

DECAYS = ("gauss", "exp", "linear")
MODES = ("multiply", "sum")


@dataclass(frozen=True, slots=True)
class Decay:
    field: str
    function: str
    origin: float
    scale: float
    offset: float = 0.0
    decay: float = 0.5

    def scores(self, values: np.ndarray) -> np.ndarray:
        """(n,) scores in [0, 1] of field values (NaN: null, which scores 0)."""
        dist = np.maximum(0.0, np.abs(values - self.origin) - self.offset)
        if self.function == "gauss":
            sigma2 = -self.scale ** 2 / (2 * math.log(self.decay))
            out = np.exp(-dist ** 2 / (2 * sigma2))
        elif self.function == "exp":
            out = np.exp(math.log(self.decay) / self.scale * dist)
        else:
            s = self.scale / (1 - self.decay)
            out = np.maximum((s - dist) / s, 0.0)
        return np.nan_to_num(out, nan=0.0)


@dataclass(frozen=True, slots=True)
class Boost:
    filter: str
    weight: float


@dataclass(frozen=True, slots=True)
class FunctionScore:
    functions: tuple
    function_mode: str = "multiply"
    boost_mode: str = "multiply"

    @property
    def fields(self) -> list[str]:
        """The fields the decays read (fetched with the hits)."""
        return [f.field for f in self.functions if isinstance(f, Decay)]


def function_score_of(ranker: Any) -> FunctionScore | None:
    """The checked form of ``ranker``: a pymilvus ``Function`` or ``FunctionScore``, or
    their dict forms (``{"functions": [...], "params": {...}}``, or one function's dict)."""
    if ranker is None:
        return None
    functions, params = _parts(ranker)
    if not functions:
        raise ParamError("a function score needs at least one reranker function")
    out = tuple(_function(f) for f in functions)
    fmode = _mode(params.get("function_mode", "multiply"), "function_mode")
    bmode = _mode(params.get("boost_mode", "multiply"), "boost_mode")
    unknown = set(params) - {"function_mode", "boost_mode"}
    if unknown:
        raise ParamError(f"function score params {sorted(unknown)} are not supported by "
                         "Hotset: use function_mode and boost_mode")
    return FunctionScore(out, fmode, bmode)


def _parts(ranker: Any) -> tuple[list, dict]:
    if hasattr(ranker, "functions"):  # pymilvus FunctionScore
        return list(ranker.functions), dict(ranker.params or {})
    if isinstance(ranker, dict) and "functions" in ranker:
        return list(ranker["functions"] or []), dict(ranker.get("params") or {})
    return [ranker], {}


def _get(f: Any, key: str, default: Any = None) -> Any:
    if isinstance(f, dict):
        return f.get(key, default)
    return getattr(f, key, default)


def _function(f: Any) -> Decay | Boost:
    params = dict(_get(f, "params") or {})
    kind = str(params.pop("reranker", "")).lower()
    fields = list(_get(f, "input_field_names") or [])
    if kind == "model":
        raise ParamError("model rerankers call an outside model service, which Hotset does "
                         "not: rerank the hits in your application, or use a decay or boost "
                         "reranker")
    if kind == "decay":
        if len(fields) != 1:
            raise ParamError("a decay reranker takes exactly one numeric input field, got "
                             f"{fields}")
        fn = str(params.pop("function", "")).lower()
        if fn not in DECAYS:
            raise ParamError(f"decay function {fn!r} is not supported: use one of {list(DECAYS)}")
        origin = _num(params.pop("origin", None), "origin")
        scale = _num(params.pop("scale", None), "scale")
        offset = _num(params.pop("offset", 0), "offset")
        decay = _num(params.pop("decay", 0.5), "decay")
        if scale <= 0:
            raise ParamError(f"decay scale must be greater than 0, got {scale}")
        if offset < 0:
            raise ParamError(f"decay offset must be at least 0, got {offset}")
        if not 0 < decay < 1:
            raise ParamError(f"decay must be between 0 and 1 (exclusive), got {decay}")
        _no_more(params, "decay")
        return Decay(fields[0], fn, origin, scale, offset, decay)
    if kind == "boost":
        if "random_score" in params:
            raise ParamError("random_score is not supported by Hotset's boost reranker: leave "
                             "it out")
        flt = params.pop("filter", "")
        weight = _num(params.pop("weight", None), "weight")
        _no_more(params, "boost")
        return Boost(str(flt or ""), weight)
    raise ParamError(f"reranker {kind!r} is not supported: use reranker='decay' or 'boost' "
                     "(model rerankers are refused)")


def _num(value: Any, what: str) -> float:
    if value is None:
        raise ParamError(f"the reranker needs {what}")
    try:
        out = float(json.loads(value) if isinstance(value, str) else value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise ParamError(f"reranker {what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out):
        raise ParamError(f"reranker {what} must be a finite number, got {value!r}")
    return out


def _mode(value: Any, what: str) -> str:
    mode = str(value).lower()
    if mode not in MODES:
        raise ParamError(f"{what} {value!r} is not supported: use one of {list(MODES)}")
    return mode


def _no_more(params: dict, kind: str) -> None:
    if params:
        raise ParamError(f"{kind} reranker params {sorted(params)} are not supported by "
                         "Hotset: leave them out")


def relevance(distances: np.ndarray, metric: str) -> np.ndarray:
    """Milvus's normalised relevance of raw search scores (higher is better)."""
    if metric in ("L2", "HAMMING", "JACCARD"):  # distances: smaller is better
        return 1.0 - 2.0 * np.arctan(distances) / math.pi
    return distances


def final_scores(fs: FunctionScore, rel: np.ndarray, values: dict[str, np.ndarray],
                 matched: list[np.ndarray | None]) -> np.ndarray:
    """(n,) final scores from the relevance ``rel``, each decay field's values and, per
    boost in order, which hits its filter matches (None: no filter, every hit)."""
    identity = 1.0 if fs.function_mode == "multiply" else 0.0
    total = np.full(rel.shape, identity)
    boosts = iter(matched)
    for f in fs.functions:
        if isinstance(f, Decay):
            s = f.scores(values[f.field])
        else:
            hit = next(boosts)
            s = np.full(rel.shape, f.weight) if hit is None else np.where(hit, f.weight,
                                                                           identity)
        total = total * s if fs.function_mode == "multiply" else total + s
    return rel * total if fs.boost_mode == "multiply" else rel + total

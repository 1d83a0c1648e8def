"""Search and query: placeholder groups in, SearchResultData / FieldData out."""
from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from ...client import MilvusClient
from ...errors import ParamError
from ...hybrid import AnnSearchRequest, parse_rank_params
from ...reads import UNSUPPORTED_SEARCH, is_count
from ...schema import DataType
from .entities import _ids
from .fields import refuse_unread, unread
from .status import OK
from .translate import (int_of, json_of, kv, queries_from_placeholder, rows_to_fields,
                        template_values)


def _outputs(c: MilvusClient, name: str, requested: list[str]) -> tuple[list[str], bool]:
    """Schema fields to return as FieldData, and whether $meta goes back too: the engine's
    own output rules (called after the engine accepted ``requested``)."""
    spec = c.output_spec(name, requested)
    return list(spec.fields), spec.all_dynamic or bool(spec.dynamic_keys)


def _named_outputs(c: MilvusClient, name: str, requested: list[str]) -> list[str]:
    """The result's output_fields as Milvus names them: ``*`` expanded to the loaded schema
    fields, dynamic keys by name, ``$meta`` when every dynamic key comes back."""
    spec = c.output_spec(name, requested)
    return [*spec.fields, *spec.dynamic_keys, *(["$meta"] if spec.all_dynamic else [])]


def _search_options(p: dict[str, str]) -> dict:
    """Search options pymilvus sends as key-value pairs, passed to the engine, which decides
    what they mean (including refusing the ones in UNSUPPORTED_SEARCH)."""
    out: dict = {"ignore_growing": p.get("ignore_growing", "").lower() == "true"}
    if p.get("round_decimal") not in (None, ""):
        out["round_decimal"] = int_of(p["round_decimal"], "round_decimal")
    if p.get("group_by_field"):
        out["group_by_field"] = p["group_by_field"]
    if p.get("group_size") not in (None, ""):
        out["group_size"] = int_of(p["group_size"], "group_size")
    if p.get("strict_group_size") not in (None, ""):
        out["strict_group_size"] = p["strict_group_size"].strip().lower() == "true"
    out.update({k: p[k] for k in UNSUPPORTED_SEARCH if p.get(k)})
    return out


def _sub_request(req) -> tuple[str, int, dict, object, dict]:
    """(anns field, limit, search params, query vectors, engine options) of a SearchRequest."""
    p = kv(req.search_params)
    limit = int_of(p.get("topk") or p.get("limit") or 10, "limit (topk)")
    params = json_of(p.get("params") or "{}", "search params")
    sp = {"metric_type": p.get("metric_type") or None, "params": params,
          "offset": int_of(p.get("offset") or 0, "offset")}
    q = queries_from_placeholder(req.placeholder_group)
    return p.get("anns_field") or None, limit, sp, q, _search_options(p)


def _function_score(fs) -> dict | None:
    """pymilvus's FunctionScore message as the engine's dict form (rerank.py checks it)."""
    if not fs.functions:
        return None
    for f in fs.functions:
        if f.type != schema_pb2.FunctionType.Rerank:
            raise ParamError(f"function {f.name!r} of function_score is not a reranker "
                             "(FunctionType.RERANK)")
    return {"functions": [{"name": f.name, "input_field_names": list(f.input_field_names),
                           "params": kv(f.params)} for f in fs.functions],
            "params": kv(fs.params)}


def search(c: MilvusClient, req) -> milvus_pb2.SearchResults:
    anns, limit, sp, q, options = _sub_request(req)
    if req.HasField("function_score"):
        options["function_score"] = _function_score(req.function_score)
    output = list(req.output_fields)
    hits = c.search(req.collection_name, q, filter=req.dsl, limit=limit,
                    output_fields=output or None, search_params=sp,
                    partition_names=list(req.partition_names) or None, anns_field=anns,
                    filter_params=template_values(req.expr_template_values), **options)
    group = options.get("group_by_field")
    if group and group not in output:  # the engine returns each hit's group value
        output = [*output, group]
    return _results(c, req.collection_name, hits, limit, output)


_SEARCH_REFUSED = unread("Search", milvus_pb2.SearchRequest)
_RANK_KEYS = ("strategy", "params", "limit", "offset", "round_decimal")


def hybrid_search(c: MilvusClient, req) -> milvus_pb2.SearchResults:
    """HybridSearch: each sub-request is read as a Search (and refused the same way), the
    ranker from rank_params; the engine fuses."""
    reqs = []
    for sub in req.requests:
        refuse_unread(sub, _SEARCH_REFUSED)
        if sub.HasField("function_score"):
            raise ParamError("a ranker on a hybrid_search sub-request is not supported: give "
                             "the hybrid_search its ranker")
        anns, limit, sp, q, options = _sub_request(sub)
        set_ = sorted(k for k, v in options.items() if v not in (False, None, -1))
        if set_:
            raise ParamError(f"hybrid_search sub-request options {set_} are not supported by "
                             "Hotset: leave them out")
        reqs.append(AnnSearchRequest(q, anns, sp, limit, sub.dsl,
                                     template_values(sub.expr_template_values)))
    rank = kv(req.rank_params)
    extra = sorted(set(rank) - set(_RANK_KEYS))
    if extra:
        raise ParamError(f"hybrid_search rank_params {extra} are not supported by Hotset "
                         "(grouping is not implemented): leave them out")
    ranker, opts = parse_rank_params(rank)
    if req.HasField("function_score"):  # a decay or boost reranker (pymilvus's Function)
        ranker = _function_score(req.function_score)
    output = list(req.output_fields)
    hits = c.hybrid_search(req.collection_name, reqs, ranker, limit=opts["limit"],
                           output_fields=output or None,
                           partition_names=list(req.partition_names) or None,
                           offset=opts["offset"], round_decimal=opts["round_decimal"])
    return _results(c, req.collection_name, hits, opts["limit"], output)


def _results(c: MilvusClient, name: str, hits: list[list[dict]], limit: int,
             output: list[str]) -> milvus_pb2.SearchResults:
    schema = c.collection_schema(name)
    pk = schema.primary.name
    flat = [h for per in hits for h in per]
    ids = [h[pk] for h in flat]
    fields, dynamic = _outputs(c, name, output) if output else ([], False)
    # As Milvus: the primary key is always in fields_data and output_fields (the Node SDK
    # builds each hit's id from them).
    fields = [pk, *[f for f in fields if f != pk]]
    named = _named_outputs(c, name, output) if output else []
    data = schema_pb2.SearchResultData(
        num_queries=len(hits), top_k=limit, scores=[h["distance"] for h in flat],
        ids=_ids(c, name, ids), topks=[len(per) for per in hits],
        output_fields=[pk, *[f for f in named if f != pk]], primary_field_name=pk)
    rows = [{**h["entity"], pk: h[pk]} for h in flat]
    data.fields_data.extend(rows_to_fields(schema, rows, fields, dynamic))
    return milvus_pb2.SearchResults(status=OK, results=data, collection_name=name)


def query(c: MilvusClient, req) -> milvus_pb2.QueryResults:
    params = template_values(req.expr_template_values)
    p = kv(req.query_params)
    growing = {"ignore_growing": p.get("ignore_growing", "").lower() == "true"}
    name = req.collection_name
    output = list(req.output_fields)
    limit = int_of(p["limit"], "limit") if "limit" in p else None
    offset = int_of(p.get("offset") or 0, "offset")
    if is_count(output):
        n = c.query(name, req.expr, output_fields=["count(*)"], filter_params=params,
                    partition_names=list(req.partition_names) or None, **growing)[0]["count(*)"]
        fd = schema_pb2.FieldData(type=int(DataType.INT64), field_name="count(*)")
        fd.scalars.long_data.data.append(n)
        return milvus_pb2.QueryResults(status=OK, fields_data=[fd], collection_name=name,
                                       output_fields=["count(*)"])
    rows = c.query(name, req.expr, output_fields=output or None, limit=limit, offset=offset,
                   partition_names=list(req.partition_names) or None, filter_params=params,
                   **growing)
    schema = c.collection_schema(name)
    fields, dynamic = _outputs(c, name, output)
    pk = schema.primary.name
    if pk not in fields:
        fields.insert(0, pk)
    return milvus_pb2.QueryResults(
        status=OK, fields_data=rows_to_fields(schema, rows, fields, dynamic),
        collection_name=name, output_fields=fields + (["$meta"] if dynamic else []))

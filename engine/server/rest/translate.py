"""Translators between Milvus REST v2 JSON and the engine's client calls."""
from __future__ import annotations

from typing import Any

from ...client import MilvusClient
from ...errors import ParamError
from ...hybrid import AnnSearchRequest
from ...index import IndexParams
from ...keywords import refuse_unknown
from ...loader import LoadState
from ...schema import DataType
from . import models as m

_REST_TYPE = {"bool": DataType.BOOL, "int8": DataType.INT8, "int16": DataType.INT16,
              "int32": DataType.INT32, "int64": DataType.INT64, "float": DataType.FLOAT,
              "double": DataType.DOUBLE, "varchar": DataType.VARCHAR, "string": DataType.VARCHAR,
              "json": DataType.JSON, "array": DataType.ARRAY,
              "floatvector": DataType.FLOAT_VECTOR, "float16vector": DataType.FLOAT16_VECTOR,
              "bfloat16vector": DataType.BFLOAT16_VECTOR, "int8vector": DataType.INT8_VECTOR,
              "binaryvector": DataType.BINARY_VECTOR,
              "sparsefloatvector": DataType.SPARSE_FLOAT_VECTOR}
_TYPE_NAME = {DataType.BOOL: "Bool", DataType.INT8: "Int8", DataType.INT16: "Int16",
              DataType.INT32: "Int32", DataType.INT64: "Int64", DataType.FLOAT: "Float",
              DataType.DOUBLE: "Double", DataType.VARCHAR: "VarChar", DataType.JSON: "JSON",
              DataType.ARRAY: "Array", DataType.FLOAT_VECTOR: "FloatVector",
              DataType.FLOAT16_VECTOR: "Float16Vector",
              DataType.BFLOAT16_VECTOR: "BFloat16Vector", DataType.INT8_VECTOR: "Int8Vector",
              DataType.BINARY_VECTOR: "BinaryVector",
              DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector"}
_LOAD_STATE = {LoadState.NotExist: "LoadStateNotExist", LoadState.NotLoad: "LoadStateNotLoad",
               LoadState.Loading: "LoadStateLoading", LoadState.Loaded: "LoadStateLoaded"}


def rest_type(name: str | None, what: str) -> DataType:
    key = (name or "").replace("_", "").lower()
    if key not in _REST_TYPE:
        raise ParamError(f"{what} {name!r} is not a Milvus data type (Int64, VarChar, "
                         "FloatVector, ...)")
    return _REST_TYPE[key]


def _int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ParamError(f"{what} must be an integer, got {v!r}") from None


def index_params(defs: list[m.IndexDef]) -> IndexParams:
    p = IndexParams()
    for d in defs:
        params = dict(d.params)
        itype = d.index_type or params.pop("index_type", None) or params.pop("indexType", None)
        metric = d.metric_type or params.pop("metric_type", None)
        p.add_index(d.field_name, itype or "AUTOINDEX", d.index_name, metric, params)
    return p


_COLLECTION_PARAMS = ("max_length", "consistencyLevel")
_SEARCH_PARAMS = ("metricType", "params")


def create_collection(c: MilvusClient, b: m.CreateCollection) -> None:
    refuse_unknown(b.params, _COLLECTION_PARAMS, "params key")
    idx = index_params(b.index_params) if b.index_params else None
    if b.schema_ is None:
        if b.dimension is None:
            raise ParamError("collections/create needs dimension (quick form) or schema")
        c.create_collection(b.collection_name, dimension=b.dimension,
                            primary_field_name=b.primary_field_name,
                            id_type="string" if b.id_type.lower() in ("varchar", "string")
                            else "int", vector_field_name=b.vector_field_name,
                            metric_type=b.metric_type, auto_id=b.auto_id,
                            max_length=_int(b.params.get("max_length"), "max_length") or 65535)
        return
    s = b.schema_
    schema = c.create_schema(auto_id=s.auto_id or bool(s.auto_id_lower),
                             enable_dynamic_field=s.enable_dynamic_field)
    for f in s.fields:
        schema.add_field(f.field_name, rest_type(f.data_type, "dataType"), **_field_args(f))
    c.create_collection(b.collection_name, schema=schema, index_params=idx)


def _field_args(f: m.FieldDef) -> dict:
    tp = f.element_type_params
    return {"is_primary": f.is_primary, "dim": _int(tp.get("dim"), "dim"),
            "max_length": _int(tp.get("max_length"), "max_length"),
            "element_type": rest_type(f.element_data_type, "elementDataType")
            if f.element_data_type else None,
            "max_capacity": _int(tp.get("max_capacity"), "max_capacity"),
            "nullable": f.nullable, "default_value": f.default_value,
            "description": f.description, "is_partition_key": f.is_partition_key}


def add_field(c: MilvusClient, b: m.AddField) -> None:
    args = _field_args(b.schema_)
    desc = args.pop("description")
    c.add_collection_field(b.collection_name, b.schema_.field_name,
                           rest_type(b.schema_.data_type, "dataType"), desc, **args)


def describe_collection(c: MilvusClient, name: str) -> dict:
    d = c.describe_collection(name)
    name = d["collection_name"]  # its own name, when asked through an alias
    fields = []
    for f in d["fields"]:
        entry = {"name": f["name"], "type": _TYPE_NAME[f["type"]], "description": f["description"],
                 "primaryKey": bool(f.get("is_primary")),
                 "autoId": bool(f.get("is_primary")) and d["auto_id"],
                 "params": [{"key": k, "value": str(v)} for k, v in f["params"].items()],
                 "nullable": bool(f.get("nullable")),
                 "partitionKey": bool(f.get("is_partition_key"))}
        if "element_type" in f:
            entry["elementType"] = _TYPE_NAME[f["element_type"]]
        fields.append(entry)
    indexes = []
    for name_ in c.list_indexes(name):
        di = c.describe_index(name, name_)
        indexes.append({"fieldName": di["field_name"], "indexName": di["index_name"],
                        "metricType": di.get("metric_type", "")})
    state = c.get_load_state(name)["state"]
    return {"collectionName": name, "collectionID": d["collection_id"],
            "description": d["description"], "autoId": d["auto_id"], "fields": fields,
            "indexes": indexes, "load": _LOAD_STATE[state], "shardsNum": 1,
            "partitionsNum": d["num_partitions"], "consistencyLevel": "Strong",
            "enableDynamicField": d["enable_dynamic_field"],
            "properties": [{"key": k, "value": v} for k, v in d["properties"].items()],
            "aliases": d["aliases"]}


def load_state(c: MilvusClient, b: m.LoadState) -> dict:
    if not c.has_collection(b.collection_name):
        c.describe_collection(b.collection_name)  # raises 100
    worst = c.get_load_state(b.collection_name, partition_names=b.partition_names)
    out: dict[str, Any] = {"loadState": _LOAD_STATE[worst["state"]]}
    if worst["state"] == LoadState.Loaded:
        out.update(loadProgress=100, message="")
    elif worst["state"] == LoadState.Loading:
        out.update(loadProgress=worst["progress"], message="")
    return out


def describe_index(c: MilvusClient, b: m.IndexNamed) -> list[dict]:
    d = c.describe_index(b.collection_name, b.index_name)
    return [{"fieldName": d["field_name"], "indexName": d["index_name"],
             "indexType": d["index_type"], "metricType": d.get("metric_type", ""),
             "indexState": "Finished", "totalRows": d["total_rows"],
             "indexedRows": d["indexed_rows"], "pendingRows": d["pending_index_rows"],
             "failReason": "",
             "params": {k: v for k, v in d.items() if k not in (
                 "field_name", "index_name", "index_type", "metric_type", "total_rows",
                 "indexed_rows", "pending_index_rows", "state")}}]


def flat_hits(results: list[list[dict]]) -> list[dict]:
    """Milvus REST v2 answers a search with one flat list of rows: pk, distance, outputs."""
    out = []
    for hits in results:
        for h in hits:
            row = {k: v for k, v in h.items() if k != "entity"}
            row.update(h["entity"])
            out.append(row)
    return out


def hybrid_search(c: MilvusClient, b: m.HybridSearch) -> list[dict]:
    reqs = []
    for s in b.search:
        refuse_unknown(s.params, _SEARCH_PARAMS, "search params key")
        reqs.append(AnnSearchRequest(s.data, s.anns_field, {
            "metric_type": s.metric_type or s.params.get("metricType"),
            "params": s.params.get("params") or {}}, s.limit, s.filter))
    return flat_hits(c.hybrid_search(
        b.collection_name, reqs, {"strategy": b.rerank.strategy, "params": b.rerank.params},
        limit=b.limit, output_fields=b.output_fields, partition_names=b.partition_names,
        offset=b.offset))


def search(c: MilvusClient, b: m.Search) -> list[dict]:
    refuse_unknown(b.search_params, _SEARCH_PARAMS, "searchParams key")
    return flat_hits(c.search(
        b.collection_name, b.data, filter=b.filter, limit=b.limit,
        output_fields=b.output_fields,
        search_params={"metric_type": b.search_params.get("metricType"),
                       "params": b.search_params.get("params") or {}, "offset": b.offset},
        partition_names=b.partition_names, anns_field=b.anns_field,
        group_by_field=b.grouping_field, group_size=b.group_size,
        strict_group_size=b.strict_group_size, function_score=_function_score(b)))


def _function_score(b: m.Search) -> dict | None:
    fs = b.function_score
    if fs is None:
        return None
    for f in fs.functions:
        if f.type.lower() != "rerank":
            raise ParamError(f"function type {f.type!r} is not supported in functionScore: "
                             "use Rerank")
    return {"functions": [{"name": f.name, "input_field_names": f.input_field_names,
                           "params": f.params} for f in fs.functions], "params": fs.params}

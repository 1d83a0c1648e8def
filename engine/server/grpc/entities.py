"""Entities: insert, upsert, delete, flush."""
from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from ...client import MilvusClient
from ...errors import DataError, MilvusException
from ...schema import DataType
from .status import OK
from .translate import columns_from_fields, template_values


def _ids(c: MilvusClient, name: str, ids: list) -> schema_pb2.IDs:
    if c.collection_schema(name).primary.dtype == DataType.INT64:
        return schema_pb2.IDs(int_id=schema_pb2.LongArray(data=ids))
    return schema_pb2.IDs(str_id=schema_pb2.StringArray(data=ids))


def _write(c: MilvusClient, req, fn) -> milvus_pb2.MutationResult:
    schema = c.collection_schema(req.collection_name)
    cols = columns_from_fields(schema, req.fields_data, req.num_rows)
    try:
        res = fn(req.collection_name, cols, partition_name=req.partition_name or "")
    except DataError as e:
        raise MilvusException(e.message, code=1100) from None
    n = len(res["ids"])
    return milvus_pb2.MutationResult(status=OK, IDs=_ids(c, req.collection_name, res["ids"]),
                                     succ_index=list(range(n)), insert_cnt=n,
                                     upsert_cnt=n if fn == c.upsert else 0, timestamp=1)


def insert(c: MilvusClient, req) -> milvus_pb2.MutationResult:
    return _write(c, req, c.insert)


def upsert(c: MilvusClient, req) -> milvus_pb2.MutationResult:
    return _write(c, req, c.upsert)


def delete(c: MilvusClient, req) -> milvus_pb2.MutationResult:
    res = c.delete(req.collection_name, filter=req.expr,
                   partition_name=req.partition_name or None,
                   filter_params=template_values(req.expr_template_values))
    return milvus_pb2.MutationResult(status=OK, delete_cnt=res["delete_count"], timestamp=1)


def flush(c: MilvusClient, req) -> milvus_pb2.FlushResponse:
    for name in req.collection_names:
        c.flush(name)
    return milvus_pb2.FlushResponse(status=OK, db_name=c.db_name)


def flush_state(c: MilvusClient, req) -> milvus_pb2.GetFlushStateResponse:
    return milvus_pb2.GetFlushStateResponse(status=OK, flushed=True)

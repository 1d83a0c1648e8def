"""Collections: create, describe, has, show, drop, statistics."""
from __future__ import annotations

import zlib

from google.protobuf.message import DecodeError
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from ...client import MilvusClient
from ...errors import ParamError
from ...schema import CollectionSchema
from .status import OK
from .translate import (add_field_from_proto, alter_properties, schema_from_proto,
                        schema_to_proto)


def create(c: MilvusClient, req) -> common_pb2.Status:
    try:
        proto = schema_pb2.CollectionSchema.FromString(req.schema)
    except DecodeError:
        raise ParamError("schema is not a CollectionSchema message") from None
    c.create_collection(req.collection_name, schema=schema_from_proto(proto))
    return OK


def add_field(c: MilvusClient, req) -> common_pb2.Status:
    try:
        proto = schema_pb2.FieldSchema.FromString(req.schema)
    except DecodeError:
        raise ParamError("schema is not a FieldSchema message") from None
    f = add_field_from_proto(CollectionSchema(), proto)
    extra = {k: getattr(f, k) for k in ("dim", "max_length", "element_type", "max_capacity",
                                        "default_value") if getattr(f, k) is not None}
    c.add_collection_field(req.collection_name, f.name, f.dtype, f.description,
                           is_primary=f.is_primary, nullable=f.nullable, **extra)
    return OK


def describe(c: MilvusClient, req) -> milvus_pb2.DescribeCollectionResponse:
    d = c.describe_collection(req.collection_name)
    name = d["collection_name"]  # its own name, when asked through an alias
    schema = c.collection_schema(name)
    return milvus_pb2.DescribeCollectionResponse(
        status=OK, schema=schema_to_proto(name, schema), collectionID=d["collection_id"],
        collection_name=name, shards_num=1, num_partitions=d["num_partitions"],
        aliases=d["aliases"],
        consistency_level=common_pb2.Strong, db_name=c.db_name,
        created_timestamp=1, created_utc_timestamp=1,
        properties=[common_pb2.KeyValuePair(key=k, value=v)
                    for k, v in d["properties"].items()])


def has(c: MilvusClient, req) -> milvus_pb2.BoolResponse:
    return milvus_pb2.BoolResponse(status=OK, value=c.has_collection(req.collection_name))


def show(c: MilvusClient, req) -> milvus_pb2.ShowCollectionsResponse:
    names = c.list_collections()
    return milvus_pb2.ShowCollectionsResponse(
        status=OK, collection_names=names,
        collection_ids=[zlib.crc32(n.encode()) for n in names],
        created_timestamps=[1] * len(names), created_utc_timestamps=[1] * len(names),
        inMemory_percentages=[100 if c.get_load_state(n)["state"] == 3 else 0 for n in names])


def drop(c: MilvusClient, req) -> common_pb2.Status:
    c.drop_collection(req.collection_name)
    return OK


def statistics(c: MilvusClient, req) -> milvus_pb2.GetCollectionStatisticsResponse:
    rows = c.get_collection_stats(req.collection_name)["row_count"]
    return milvus_pb2.GetCollectionStatisticsResponse(
        status=OK, stats=[common_pb2.KeyValuePair(key="row_count", value=str(rows))])


def compact(c: MilvusClient, req) -> milvus_pb2.ManualCompactionResponse:
    if not req.collection_name:
        raise ParamError("ManualCompaction needs collection_name")
    job = c.compact(req.collection_name, is_clustering=req.majorCompaction,
                    target_size=req.target_size or None)
    return milvus_pb2.ManualCompactionResponse(status=OK, compactionID=job,
                                               compactionPlanCount=1)


def compaction_state(c: MilvusClient, req) -> milvus_pb2.GetCompactionStateResponse:
    state = c.get_compaction_state(req.compactionID)
    done = state == "Completed"
    return milvus_pb2.GetCompactionStateResponse(
        status=OK, state=common_pb2.Completed if done else common_pb2.UndefiedState,
        completedPlanNo=1 if done else 0)


def rename(c: MilvusClient, req) -> common_pb2.Status:
    c.rename_collection(req.oldName, req.newName, req.newDBName)
    return OK


def truncate(c: MilvusClient, req) -> milvus_pb2.TruncateCollectionResponse:
    c.truncate_collection(req.collection_name)
    return milvus_pb2.TruncateCollectionResponse(status=OK)


def alter(c: MilvusClient, req) -> common_pb2.Status:
    return alter_properties(req, req.collection_name, c.alter_collection_properties,
                            c.drop_collection_properties)


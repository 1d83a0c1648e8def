"""Partitions: create, show, has, drop, load, release."""
from __future__ import annotations

import zlib

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ...client import MilvusClient
from .status import OK


def create(c: MilvusClient, req) -> common_pb2.Status:
    c.create_partition(req.collection_name, req.partition_name)
    return OK


def show(c: MilvusClient, req) -> milvus_pb2.ShowPartitionsResponse:
    names = c.list_partitions(req.collection_name)
    return milvus_pb2.ShowPartitionsResponse(
        status=OK, partition_names=names, partitionIDs=[zlib.crc32(n.encode()) for n in names],
        created_timestamps=[1] * len(names), created_utc_timestamps=[1] * len(names))


def has(c: MilvusClient, req) -> milvus_pb2.BoolResponse:
    return milvus_pb2.BoolResponse(status=OK, value=c.has_partition(req.collection_name,
                                                                    req.partition_name))


def drop(c: MilvusClient, req) -> common_pb2.Status:
    c.drop_partition(req.collection_name, req.partition_name)
    return OK


def load(c: MilvusClient, req) -> common_pb2.Status:
    c.load_partitions(req.collection_name, list(req.partition_names),
                      load_fields=list(req.load_fields) or None,
                      skip_load_dynamic_field=req.skip_load_dynamic_field,
                      replica_number=req.replica_number or 1)
    return OK


def release(c: MilvusClient, req) -> common_pb2.Status:
    c.release_partitions(req.collection_name, list(req.partition_names))
    return OK


def statistics(c: MilvusClient, req) -> milvus_pb2.GetPartitionStatisticsResponse:
    n = c.get_partition_stats(req.collection_name, req.partition_name)["row_count"]
    return milvus_pb2.GetPartitionStatisticsResponse(
        status=OK, stats=[common_pb2.KeyValuePair(key="row_count", value=str(n))])


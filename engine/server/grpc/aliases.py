"""CreateAlias, AlterAlias, DropAlias, DescribeAlias, ListAliases."""
from __future__ import annotations

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ...client import MilvusClient
from .status import OK


def create(c: MilvusClient, req) -> common_pb2.Status:
    c.create_alias(req.collection_name, req.alias)
    return OK


def alter(c: MilvusClient, req) -> common_pb2.Status:
    c.alter_alias(req.collection_name, req.alias)
    return OK


def drop(c: MilvusClient, req) -> common_pb2.Status:
    c.drop_alias(req.alias)
    return OK


def describe(c: MilvusClient, req) -> milvus_pb2.DescribeAliasResponse:
    d = c.describe_alias(req.alias)
    return milvus_pb2.DescribeAliasResponse(status=OK, db_name=d["db_name"], alias=d["alias"],
                                            collection=d["collection_name"])


def list_(c: MilvusClient, req) -> milvus_pb2.ListAliasesResponse:
    d = c.list_aliases(req.collection_name)
    return milvus_pb2.ListAliasesResponse(status=OK, db_name=d["db_name"],
                                          collection_name=d["collection_name"],
                                          aliases=d["aliases"])

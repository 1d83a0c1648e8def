"""Databases: create, drop, list, describe, alter (properties)."""
from __future__ import annotations

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ...client import MilvusClient
from .status import OK
from .translate import alter_properties, kv

# RPCs whose db_name is the database acted on, not the one the request runs in
ON_DATABASES = frozenset({"CreateDatabase", "DropDatabase", "DescribeDatabase",
                          "AlterDatabase", "ListDatabases"})


def list_(c: MilvusClient, req) -> milvus_pb2.ListDatabasesResponse:
    names = c.list_databases()
    return milvus_pb2.ListDatabasesResponse(status=OK, db_names=names,
                                            db_ids=list(range(len(names))))


def create(c: MilvusClient, req) -> common_pb2.Status:
    c.create_database(req.db_name, kv(req.properties))
    return OK


def drop(c: MilvusClient, req) -> common_pb2.Status:
    c.drop_database(req.db_name)
    return OK


def describe(c: MilvusClient, req) -> milvus_pb2.DescribeDatabaseResponse:
    d = c.describe_database(req.db_name or "default")
    props = [common_pb2.KeyValuePair(key=k, value=v) for k, v in d.items() if k != "name"]
    return milvus_pb2.DescribeDatabaseResponse(status=OK, db_name=d["name"], properties=props)


def alter(c: MilvusClient, req) -> common_pb2.Status:
    return alter_properties(req, req.db_name, c.alter_database_properties,
                            c.drop_database_properties)

"""The MilvusService servicer: each RPC is one call into a family module, wrapped so that
engine errors become Milvus statuses through the one table in ``status.py``. RPCs Hotset
does not serve answer UNIMPLEMENTED (grpc's default), which pymilvus reports clearly."""
from __future__ import annotations

import logging
from typing import Any, Callable

from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from ...client import MilvusClient
from ...errors import MilvusException
from . import collections, entities, indexes, load, misc, partitions, search
from .status import status_of

log = logging.getLogger("hotset.grpc")

# RPC name -> (handler, response class or None when the RPC answers a bare Status)
ROUTES: dict[str, tuple[Callable[[MilvusClient, Any], Any], Any]] = {
    "Connect": (misc.connect, milvus_pb2.ConnectResponse),
    "GetVersion": (misc.version, milvus_pb2.GetVersionResponse),
    "CheckHealth": (misc.health, milvus_pb2.CheckHealthResponse),
    "ListDatabases": (misc.databases, milvus_pb2.ListDatabasesResponse),
    "GetPersistentSegmentInfo": (misc.segments, milvus_pb2.GetPersistentSegmentInfoResponse),
    "CreateCollection": (collections.create, None),
    "DescribeCollection": (collections.describe, milvus_pb2.DescribeCollectionResponse),
    "HasCollection": (collections.has, milvus_pb2.BoolResponse),
    "ShowCollections": (collections.show, milvus_pb2.ShowCollectionsResponse),
    "DropCollection": (collections.drop, None),
    "GetCollectionStatistics": (collections.statistics,
                                milvus_pb2.GetCollectionStatisticsResponse),
    "Insert": (entities.insert, milvus_pb2.MutationResult),
    "Upsert": (entities.upsert, milvus_pb2.MutationResult),
    "Delete": (entities.delete, milvus_pb2.MutationResult),
    "Flush": (entities.flush, milvus_pb2.FlushResponse),
    "GetFlushState": (entities.flush_state, milvus_pb2.GetFlushStateResponse),
    "Search": (search.search, milvus_pb2.SearchResults),
    "Query": (search.query, milvus_pb2.QueryResults),
    "CreateIndex": (indexes.create, None),
    "DescribeIndex": (indexes.describe, milvus_pb2.DescribeIndexResponse),
    "DropIndex": (indexes.drop, None),
    "GetIndexState": (indexes.state, milvus_pb2.GetIndexStateResponse),
    "GetIndexBuildProgress": (indexes.progress, milvus_pb2.GetIndexBuildProgressResponse),
    "CreatePartition": (partitions.create, None),
    "ShowPartitions": (partitions.show, milvus_pb2.ShowPartitionsResponse),
    "HasPartition": (partitions.has, milvus_pb2.BoolResponse),
    "DropPartition": (partitions.drop, None),
    "LoadPartitions": (partitions.load, None),
    "ReleasePartitions": (partitions.release, None),
    "LoadCollection": (load.load, None),
    "ReleaseCollection": (load.release, None),
    "GetLoadState": (load.state, milvus_pb2.GetLoadStateResponse),
    "GetLoadingProgress": (load.progress, milvus_pb2.GetLoadingProgressResponse),
}


def _rpc(client: MilvusClient, name: str, handler: Callable, response: Any) -> Callable:
    def call(self, request, context):
        try:
            return handler(client, request)
        except MilvusException as e:
            status = status_of(e)
        except Exception as e:  # noqa: BLE001 - a bug must still answer the client
            log.exception("%s failed", name)
            status = common_pb2.Status(code=65535, reason=f"{name} failed: {e}",
                                       error_code=common_pb2.UnexpectedError)
        return status if response is None else response(status=status)
    call.__name__ = name
    return call


def make_servicer(client: MilvusClient) -> milvus_pb2_grpc.MilvusServiceServicer:
    methods = {name: _rpc(client, name, h, resp) for name, (h, resp) in ROUTES.items()}
    cls = type("HotsetMilvusServicer", (milvus_pb2_grpc.MilvusServiceServicer,), methods)
    return cls()

"""The MilvusService servicer: each RPC is one call into a family module, wrapped so that
engine errors become Milvus statuses through the one table in ``status.py``. Every other
MilvusService RPC answers its own response type with status 10 ("service unimplemented")
naming the RPC, so a Milvus client raises its usual MilvusException instead of a raw gRPC
error. An unexpected exception is logged with its traceback and answered 65535 without its
text."""
from __future__ import annotations

import logging
from typing import Any, Callable

import grpc
from google.protobuf import message_factory
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from ...client import MilvusClient
from ...errors import MilvusException
from . import aliases, collections, databases, entities, indexes, load, misc, partitions, search
from .fields import refuse_unread, unread
from .status import internal_error, status_of, unimplemented

log = logging.getLogger("hotset.grpc")

# RPC name -> (handler, response class or None when the RPC answers a bare Status)
ROUTES: dict[str, tuple[Callable[[MilvusClient, Any], Any], Any]] = {
    "Connect": (misc.connect, milvus_pb2.ConnectResponse),
    "GetVersion": (misc.version, milvus_pb2.GetVersionResponse),
    "CheckHealth": (misc.health, milvus_pb2.CheckHealthResponse),
    "ListDatabases": (databases.list_, milvus_pb2.ListDatabasesResponse),
    "CreateDatabase": (databases.create, None),
    "DropDatabase": (databases.drop, None),
    "DescribeDatabase": (databases.describe, milvus_pb2.DescribeDatabaseResponse),
    "AlterDatabase": (databases.alter, None),
    "AllocTimestamp": (misc.timestamp, milvus_pb2.AllocTimestampResponse),
    "GetPersistentSegmentInfo": (misc.segments, milvus_pb2.GetPersistentSegmentInfoResponse),
    "CreateCollection": (collections.create, None),
    "DescribeCollection": (collections.describe, milvus_pb2.DescribeCollectionResponse),
    "HasCollection": (collections.has, milvus_pb2.BoolResponse),
    "ShowCollections": (collections.show, milvus_pb2.ShowCollectionsResponse),
    "DropCollection": (collections.drop, None),
    "GetCollectionStatistics": (collections.statistics,
                                milvus_pb2.GetCollectionStatisticsResponse),
    "RenameCollection": (collections.rename, None),
    "AddCollectionField": (collections.add_field, None),
    "AlterCollection": (collections.alter, None),
    "GetPartitionStatistics": (partitions.statistics,
                               milvus_pb2.GetPartitionStatisticsResponse),
    "TruncateCollection": (collections.truncate, milvus_pb2.TruncateCollectionResponse),
    "ManualCompaction": (collections.compact, milvus_pb2.ManualCompactionResponse),
    "GetCompactionState": (collections.compaction_state,
                           milvus_pb2.GetCompactionStateResponse),
    "Insert": (entities.insert, milvus_pb2.MutationResult),
    "Upsert": (entities.upsert, milvus_pb2.MutationResult),
    "Delete": (entities.delete, milvus_pb2.MutationResult),
    "Flush": (entities.flush, milvus_pb2.FlushResponse),
    "GetFlushState": (entities.flush_state, milvus_pb2.GetFlushStateResponse),
    "Search": (search.search, milvus_pb2.SearchResults),
    "Query": (search.query, milvus_pb2.QueryResults),
    "HybridSearch": (search.hybrid_search, milvus_pb2.SearchResults),
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
    "CreateAlias": (aliases.create, None),
    "AlterAlias": (aliases.alter, None),
    "DropAlias": (aliases.drop, None),
    "DescribeAlias": (aliases.describe, milvus_pb2.DescribeAliasResponse),
    "ListAliases": (aliases.list_, milvus_pb2.ListAliasesResponse),
}


_SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def unary_methods() -> dict[str, Any]:
    """Every unary MilvusService RPC -> its response message class."""
    return {m.name: message_factory.GetMessageClass(m.output_type) for m in _SERVICE.methods
            if not getattr(m, "client_streaming", False)
            and not getattr(m, "server_streaming", False)}


def answer(response: Any, status: common_pb2.Status, context: Any) -> Any:
    """``status`` in the RPC's response type: the Status itself, a response carrying it, or
    (for the few responses without a status field) a gRPC error with its text."""
    if response is common_pb2.Status:
        return status
    if "status" in response.DESCRIPTOR.fields_by_name:
        return response(status=status)
    code = grpc.StatusCode.UNAUTHENTICATED if status.code == 1800 else \
        grpc.StatusCode.UNIMPLEMENTED
    context.abort(code, status.reason)


def _rpc(client: MilvusClient, name: str, handler: Callable, response: Any) -> Callable:
    refused = unread(name, message_factory.GetMessageClass(
        _SERVICE.methods_by_name[name].input_type))

    def call(self, request, context):
        try:
            refuse_unread(request, refused)
            if name in databases.ON_DATABASES:  # db_name there is the database acted on
                return handler(client, request)
            # the request's db_name, else pymilvus's "dbname" metadata, else "default"
            db = getattr(request, "db_name", "") or \
                dict(context.invocation_metadata() or ()).get("dbname")
            return handler(client.in_database(db), request)
        except MilvusException as e:
            status = status_of(e)
        except Exception:  # noqa: BLE001 - a bug must still answer the client
            log.exception("%s failed", name)
            status = internal_error(name)
        return answer(response, status, context)
    call.__name__ = name
    return call


def _unserved(name: str, response: Any) -> Callable:
    def call(self, request, context):
        return answer(response, unimplemented(name), context)
    call.__name__ = name
    return call


def make_servicer(client: MilvusClient) -> milvus_pb2_grpc.MilvusServiceServicer:
    methods = {name: _unserved(name, resp) for name, resp in unary_methods().items()}
    methods.update({name: _rpc(client, name, h, resp or common_pb2.Status)
                    for name, (h, resp) in ROUTES.items()})
    cls = type("HotsetMilvusServicer", (milvus_pb2_grpc.MilvusServiceServicer,), methods)
    return cls()

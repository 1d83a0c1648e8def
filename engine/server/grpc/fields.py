"""Which fields of each served request Hotset reads: the rest are refused when set.

Default deny: a field of a request message that is not listed under its RPC here, and is
set (non-default), is answered 1100 naming it, so nothing a Milvus client sends is ignored
silently; a field that a newer Milvus protocol adds is refused until someone decides what it
means here. The servicer applies this to every RPC before its handler runs. Listed fields
are either acted on by the handler or harmless to accept, and the comment says which.
"""
from __future__ import annotations

from typing import Any

from ...errors import ParamError

# Accepted everywhere: request metadata (base: msg id, timestamps), and the consistency
# knobs: Hotset is always strongly consistent in process, which satisfies every level.
_META = ("base", "db_name", "consistency_level", "use_default_consistency",
         "guarantee_timestamp", "time_stamp", "timestamp", "not_return_all_meta")

READ: dict[str, tuple[str, ...]] = {
    "Connect": ("client_info",),
    "GetVersion": (), "CheckHealth": (), "ListDatabases": (), "AllocTimestamp": (),
    "CreateDatabase": ("properties",), "DropDatabase": (), "DescribeDatabase": (),
    # db_id: pymilvus leaves it 0; the name decides
    "AlterDatabase": ("properties", "delete_keys", "db_id"),
    "GetPersistentSegmentInfo": ("dbName", "collectionName", "states"),
    # shards_num: one shard serves every collection; results do not depend on it
    "CreateCollection": ("collection_name", "schema", "shards_num"),
    "DescribeCollection": ("collection_name", "collectionID"),
    "HasCollection": ("collection_name",),
    "ShowCollections": (),
    "DropCollection": ("collection_name",),
    "GetCollectionStatistics": ("collection_name",),
    "RenameCollection": ("oldName", "newName", "newDBName"),
    # collectionID: as for ManualCompaction, the name decides
    "AddCollectionField": ("collection_name", "collectionID", "schema"),
    "AlterCollection": ("collection_name", "collectionID", "properties", "delete_keys"),
    "GetPartitionStatistics": ("collection_name", "partition_name"),
    "TruncateCollection": ("collection_name",),
    # collectionID: pymilvus sends it with the name on older servers; the name decides.
    # l0Compaction: deletes are applied by every compaction here.
    "ManualCompaction": ("collection_name", "collectionID", "majorCompaction", "l0Compaction",
                         "target_size"),
    "GetCompactionState": ("compactionID",),
    # schema_timestamp: pymilvus's schema version check; the engine validates every row
    "Insert": ("collection_name", "partition_name", "fields_data", "num_rows",
               "schema_timestamp"),
    "Upsert": ("collection_name", "partition_name", "fields_data", "num_rows",
               "schema_timestamp"),
    "Delete": ("collection_name", "partition_name", "expr", "expr_template_values"),
    "Flush": ("collection_names",),
    "GetFlushState": ("segmentIDs", "flush_ts", "collection_name"),
    "Search": ("collection_name", "partition_names", "dsl", "dsl_type", "placeholder_group",
               "output_fields", "search_params", "nq", "expr_template_values",
               "function_score"),
    "Query": ("collection_name", "expr", "output_fields", "partition_names", "query_params",
              "expr_template_values"),
    # each of requests is checked against Search's list
    "HybridSearch": ("collection_name", "partition_names", "requests", "rank_params",
                     "output_fields", "function_score"),
    "CreateIndex": ("collection_name", "field_name", "extra_params", "index_name"),
    "DescribeIndex": ("collection_name", "field_name", "index_name"),
    "DropIndex": ("collection_name", "field_name", "index_name"),
    "GetIndexState": ("collection_name", "field_name", "index_name"),
    "GetIndexBuildProgress": ("collection_name", "field_name", "index_name"),
    "CreatePartition": ("collection_name", "partition_name"),
    "ShowPartitions": ("collection_name", "collectionID"),
    "HasPartition": ("collection_name", "partition_name"),
    "DropPartition": ("collection_name", "partition_name"),
    "LoadPartitions": ("collection_name", "partition_names", "replica_number", "load_fields",
                       "skip_load_dynamic_field"),
    "ReleasePartitions": ("collection_name", "partition_names"),
    "LoadCollection": ("collection_name", "replica_number", "refresh", "load_fields",
                       "skip_load_dynamic_field"),
    "ReleaseCollection": ("collection_name",),
    "GetLoadState": ("collection_name", "partition_names"),
    "GetLoadingProgress": ("collection_name", "partition_names"),
    "CreateAlias": ("collection_name", "alias"),
    "AlterAlias": ("collection_name", "alias"),
    "DropAlias": ("alias",),
    "DescribeAlias": ("alias",),
    "ListAliases": ("collection_name",),
}


def unread(rpc: str, request_class: Any) -> tuple[str, ...]:
    """The fields of ``rpc``'s request that Hotset refuses when set."""
    read = set(READ[rpc]) | set(_META)
    return tuple(f.name for f in request_class.DESCRIPTOR.fields if f.name not in read)


def refuse_unread(req: Any, fields: tuple[str, ...]) -> None:
    """1100 naming the first of ``fields`` that ``req`` sets."""
    given = {f.name for f, _ in req.ListFields()}
    for name in fields:
        if name in given:
            raise ParamError(f"{req.DESCRIPTOR.name}.{name} is not supported by Hotset: leave "
                             "it out (see the compatibility table in Hotset's README)")

"""Indexes: create, describe, drop, state and build progress."""
from __future__ import annotations

import json

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ...client import MilvusClient
from ...errors import MilvusException, ParamError
from ...index import IndexParams
from .status import OK
from .translate import json_of, kv


def create(c: MilvusClient, req) -> common_pb2.Status:
    p = kv(req.extra_params)
    params = json_of(p.pop("params", "{}") or "{}", "index params")
    if not isinstance(params, dict):
        raise ParamError("index params must be a JSON object")
    itype = p.pop("index_type", "") or params.pop("index_type", "")
    metric = p.pop("metric_type", None) or params.pop("metric_type", None)
    params.update(p)
    ip = IndexParams()
    ip.add_index(req.field_name, itype or "AUTOINDEX", req.index_name, metric, params)
    c.create_index(req.collection_name, ip)
    return OK


def describe(c: MilvusClient, req) -> milvus_pb2.DescribeIndexResponse:
    if req.index_name:  # the engine checks the name and answers 700 if it is not there
        names = [req.index_name]
    else:
        names = c.list_indexes(req.collection_name, req.field_name)
    if not names:
        raise MilvusException(f"index not found[collection={req.collection_name}]", code=700)
    descs = []
    for n in names:
        d = c.describe_index(req.collection_name, n)
        extra = {k: v for k, v in d.items() if k not in (
            "index_type", "metric_type", "field_name", "index_name", "total_rows",
            "indexed_rows", "pending_index_rows", "state")}
        # as Milvus: the build params one key each (it flattens "params" at create)
        params = [common_pb2.KeyValuePair(key="index_type", value=d["index_type"])]
        params += [common_pb2.KeyValuePair(key=k, value=v if isinstance(v, str)
                                           else json.dumps(v)) for k, v in extra.items()]
        if d.get("metric_type"):
            params.append(common_pb2.KeyValuePair(key="metric_type", value=d["metric_type"]))
        descs.append(milvus_pb2.IndexDescription(
            index_name=n, field_name=d["field_name"], params=params, state=common_pb2.Finished,
            total_rows=d["total_rows"], indexed_rows=d["indexed_rows"],
            pending_index_rows=d["pending_index_rows"]))
    return milvus_pb2.DescribeIndexResponse(status=OK, index_descriptions=descs)


def drop(c: MilvusClient, req) -> common_pb2.Status:
    names = [req.index_name] if req.index_name else c.list_indexes(req.collection_name,
                                                                      req.field_name)
    for n in names:
        c.drop_index(req.collection_name, n)
    return OK


def state(c: MilvusClient, req) -> milvus_pb2.GetIndexStateResponse:
    return milvus_pb2.GetIndexStateResponse(status=OK, state=common_pb2.Finished)


def progress(c: MilvusClient, req) -> milvus_pb2.GetIndexBuildProgressResponse:
    rows = c.get_collection_stats(req.collection_name)["row_count"]
    return milvus_pb2.GetIndexBuildProgressResponse(status=OK, indexed_rows=rows,
                                                    total_rows=rows)

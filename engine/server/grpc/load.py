"""Load and release: LoadCollection (load_fields, skip_load_dynamic_field, refresh),
GetLoadingProgress with real byte progress, GetLoadState, ReleaseCollection."""
from __future__ import annotations

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ...client import MilvusClient
from ...loader import LoadState
from .status import OK

_STATE = {LoadState.NotExist: common_pb2.LoadStateNotExist,
          LoadState.NotLoad: common_pb2.LoadStateNotLoad,
          LoadState.Loading: common_pb2.LoadStateLoading,
          LoadState.Loaded: common_pb2.LoadStateLoaded}


def load(c: MilvusClient, req) -> common_pb2.Status:
    if req.refresh:
        c.refresh_load(req.collection_name)
        return OK
    c.load_collection(req.collection_name, replica_number=req.replica_number or 1,
                      load_fields=list(req.load_fields) or None,
                      skip_load_dynamic_field=req.skip_load_dynamic_field, _async=True)
    return OK


def release(c: MilvusClient, req) -> common_pb2.Status:
    c.release_collection(req.collection_name)
    return OK


def state(c: MilvusClient, req) -> milvus_pb2.GetLoadStateResponse:
    st = c.get_load_state(req.collection_name, partition_names=list(req.partition_names))
    return milvus_pb2.GetLoadStateResponse(status=OK, state=_STATE[st["state"]])


def progress(c: MilvusClient, req) -> milvus_pb2.GetLoadingProgressResponse:
    err = c.take_load_error(req.collection_name)
    if err is not None:
        raise err  # the background load failed (1400 names the bytes): say so, once
    st = c.get_load_state(req.collection_name)
    if st["state"] == LoadState.NotExist:
        c.describe_collection(req.collection_name)  # raises 100
    pct = 100 if st["state"] == LoadState.Loaded else st.get("progress", 0)
    return milvus_pb2.GetLoadingProgressResponse(status=OK, progress=pct, refresh_progress=pct)

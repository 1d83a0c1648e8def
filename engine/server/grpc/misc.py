"""Connect, GetVersion, CheckHealth, segment info and the other small RPCs clients call."""
from __future__ import annotations

import time

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from ... import __version__
from ...client import MilvusClient
from .status import OK

MILVUS_VERSION = "v2.5.0"  # the protocol level Hotset speaks


def connect(c: MilvusClient, req) -> milvus_pb2.ConnectResponse:
    info = common_pb2.ServerInfo(build_tags=f"hotset-{__version__}", build_time="",
                                 git_commit="", go_version="", deploy_mode="STANDALONE",
                                 reserved={"engine": "hotset"})
    return milvus_pb2.ConnectResponse(status=OK, server_info=info,
                                      identifier=int(time.time() * 1000) % (1 << 31))


def version(c: MilvusClient, req) -> milvus_pb2.GetVersionResponse:
    return milvus_pb2.GetVersionResponse(status=OK, version=MILVUS_VERSION)


def health(c: MilvusClient, req) -> milvus_pb2.CheckHealthResponse:
    return milvus_pb2.CheckHealthResponse(status=OK, isHealthy=True)


def segments(c: MilvusClient, req) -> milvus_pb2.GetPersistentSegmentInfoResponse:
    infos = [milvus_pb2.PersistentSegmentInfo(segmentID=s["segment_id"], collectionID=0,
                                              partitionID=0, num_rows=s["num_rows"],
                                              state=common_pb2.Flushed)
             for s in c.persistent_segments(req.collectionName)]
    return milvus_pb2.GetPersistentSegmentInfoResponse(status=OK, infos=infos)


def timestamp(c: MilvusClient, req) -> milvus_pb2.AllocTimestampResponse:
    """A hybrid timestamp as Milvus's (physical milliseconds << 18): Hotset is strongly
    consistent in process, so any current time serves as a consistency point."""
    return milvus_pb2.AllocTimestampResponse(status=OK, timestamp=int(time.time() * 1000) << 18)

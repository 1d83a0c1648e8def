"""The one table from engine errors to Milvus status messages."""
from __future__ import annotations

from pymilvus.grpc_gen import common_pb2

from ...errors import MilvusException

# legacy ErrorCode for the codes pymilvus still inspects; everything else UnexpectedError
_LEGACY = {100: common_pb2.CollectionNotExists, 101: common_pb2.UnexpectedError,
           200: common_pb2.UnexpectedError, 700: common_pb2.IndexNotExist,
           1100: common_pb2.IllegalArgument, 1800: common_pb2.NotReadyServe}

OK = common_pb2.Status()


def status_of(err: MilvusException) -> common_pb2.Status:
    return common_pb2.Status(code=err.code, reason=err.message,
                             error_code=_LEGACY.get(err.code, common_pb2.UnexpectedError),
                             extra_info={"is_input_error": "true" if err.code in (
                                 1100, 1700, 1804) else "false"})


def unauthenticated() -> common_pb2.Status:
    return common_pb2.Status(code=1800, reason="user hasn't authenticated",
                             error_code=common_pb2.PermissionDenied)


def unimplemented(rpc: str) -> common_pb2.Status:
    """Milvus's ErrServiceUnimplemented (10) for an RPC Hotset does not serve."""
    return common_pb2.Status(
        code=10, reason=f"service unimplemented: Hotset does not serve the {rpc} RPC; see the "
        "compatibility table in Hotset's README for what it serves",
        error_code=common_pb2.UnexpectedError)


def internal_error(rpc: str) -> common_pb2.Status:
    """A bug: the client gets a short message, the traceback goes to the server log."""
    return common_pb2.Status(code=65535, reason=f"internal error while serving {rpc}: the "
                             "server log has the details; please report it",
                             error_code=common_pb2.UnexpectedError)

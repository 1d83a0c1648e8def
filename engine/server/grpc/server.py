"""A grpc server for the servicer, with token auth from the ``authorization`` metadata
(pymilvus sends base64 of ``user:password``)."""
from __future__ import annotations

import base64
from concurrent import futures

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from ...client import MilvusClient
from .servicer import answer, make_servicer, unary_methods
from .status import unauthenticated


class _Auth(grpc.ServerInterceptor):
    """Every RPC without the token answers 1800 in its own response type (a bare Status
    serialised as another message would read as success)."""

    def __init__(self, token: str) -> None:
        self.accepted = {token, base64.b64encode(token.encode()).decode()}
        self.responses = unary_methods()

    def intercept_service(self, continuation, details):
        md = dict(details.invocation_metadata or ())
        got = md.get("authorization", "")
        if got.startswith("Bearer "):
            got = got[len("Bearer "):]
        if got in self.accepted:
            return continuation(details)
        name = details.method.rsplit("/", 1)[-1]
        response = self.responses.get(name)

        def deny(request, context):
            return answer(response, unauthenticated(), context)

        handler = continuation(details)
        if handler is None or response is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            deny, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def start_grpc(client: MilvusClient, port: int, token: str | None = None,
               host: str = "127.0.0.1", workers: int = 8) -> tuple[grpc.Server, int]:
    interceptors = [_Auth(token)] if token else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         interceptors=interceptors,
                         options=[("grpc.max_receive_message_length", 256 << 20),
                                  ("grpc.max_send_message_length", 256 << 20)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(make_servicer(client), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound

"""One port for gRPC and REST, as Milvus serves both on 19530.

Each accepted connection is told apart by its first bytes: an HTTP/2 connection (gRPC)
opens with the preface ``PRI * HTTP/2.0``, an HTTP/1.1 request with a method name. The
connection is then spliced, byte for byte, to the gRPC server or to the REST server, both
listening on private loopback ports.
"""
from __future__ import annotations

import asyncio

_PREFACE = b"PRI"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except RuntimeError:
            pass


def handler(grpc_port: int, http_port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = b""
        try:
            while len(head) < len(_PREFACE):
                chunk = await reader.read(len(_PREFACE) - len(head))
                if not chunk:
                    writer.close()
                    return
                head += chunk
        except ConnectionError:
            return
        port = grpc_port if head == _PREFACE else http_port
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle

"""``python -m engine serve`` / ``hotset serve``: Milvus gRPC and RESTful v2 on one port."""
from __future__ import annotations

import ipaddress
import logging
import sys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a data directory over Milvus gRPC and RESTful v2")
    p.add_argument("--port", type=int, default=19530)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--data", default="./data")
    p.add_argument("--token", default=None, help="require 'Authorization: Bearer <token>'")
    p.add_argument("--device", default="auto")
    p.add_argument("--devices", default=None,
                   help="serve from several in-process workers, e.g. cuda:0,cuda:1")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="sealed segments on Ray actors: a cluster ADDRESS, 'auto' (this "
                        "node's), or nothing (start a local one)")
    p.add_argument("--ray-workers", type=int, default=None,
                   help="Ray actors (with --ray; 2 if not given)")
    p.add_argument("--memory-limit", type=int, default=None)
    p.add_argument("--max-body", type=int, default=64 << 20, help="largest request body, bytes")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without --token")
    p.set_defaults(func=serve)


def serve(args) -> int:
    if args.ray_workers is not None and (args.ray is None or args.ray_workers < 1):
        print("--ray-workers needs --ray and at least one worker", file=sys.stderr)
        return 2
    if not args.token and not _is_loopback(args.host) and not args.insecure:
        print(f"refusing to listen on {args.host} without --token: anyone who can reach it "
              "could read and delete your data. Give --token user:pass, or --insecure if you "
              "mean it.", file=sys.stderr)
        return 2
    import asyncio
    import socket

    try:
        import grpc  # noqa: F401
        import pymilvus  # noqa: F401
        import uvicorn
    except ImportError as e:
        print(f"the server needs the 'server' extra: pip install 'hotset[server]' ({e})",
              file=sys.stderr)
        return 2

    from ..client import MilvusClient
    from .grpc.server import start_grpc
    from .mux import handler
    from .rest import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    client = MilvusClient(
        args.data, device=args.device, memory_limit=args.memory_limit,
        devices=args.devices.split(",") if args.devices else None,
        ray_workers=(args.ray_workers or 2) if args.ray else 0,
        ray_address=None if args.ray in (None, "local") else args.ray)
    if client.device.type == "cuda":
        import torch

        from kernels import crossover

        logging.getLogger("hotset.serve").info(
            crossover.describe(torch.cuda.get_device_name(client.device)))
    grpc_server, grpc_port = start_grpc(client, 0, token=args.token)
    app = create_app(client, token=args.token, max_body=args.max_body,
                     before_close=lambda: grpc_server.stop(grace=5).wait())
    http_sock = socket.socket()
    http_sock.bind(("127.0.0.1", 0))
    http_port = http_sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="info", access_log=True)
    rest = uvicorn.Server(config)

    async def main() -> None:
        mux = await asyncio.start_server(handler(grpc_port, http_port), args.host, args.port)
        logging.getLogger("hotset.serve").info(
            "serving %s on %s:%d (Milvus gRPC and RESTful v2 on one port), workers: %s",
            args.data, args.host, args.port, ", ".join(client._dbs.default.workers.names))
        try:
            await rest.serve(sockets=[http_sock])
        finally:
            mux.close()

    asyncio.run(main())
    return 0

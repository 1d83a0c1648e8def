"""A real server process on a free loopback port, for the REST and gRPC tests."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path, *extra: str) -> None:
        import httpx

        self.port = free_port()
        self.data = data
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--port", str(self.port), "--data",
             str(data), "--device", "cpu", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stdout.read()) from None
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def post(self, path: str, body=None, **kw):
        content = body if isinstance(body, (str, bytes)) else json.dumps(body or {})
        return self.http.post(f"/v2/vectordb/{path}", content=content, **kw)

    def ok(self, path: str, body=None, **kw):
        r = self.post(path, body, **kw)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["code"] == 0, out
        return out["data"]

    def stop(self) -> int:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.proc.stdout.close()

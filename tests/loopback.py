"""A JSON-over-HTTP server on 127.0.0.1 in a background thread, the base of the test endpoints."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer:
    """Serves `handler()` on a free loopback port while used as a context manager; `url` ends in /v1."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class JSONHandler(BaseHTTPRequestHandler):
    """Reads a JSON request body and writes a JSON response; quiet."""

    def log_message(self, *args: Any) -> None:
        pass

    def read_json(self) -> tuple[bytes, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        return raw, json.loads(raw)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None, trickle: float = 0) -> None:
        """The response, all at once or, with `trickle`, one byte every `trickle` seconds."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if not trickle:
                self.wfile.write(data)
            for byte in data if trickle else b"":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(trickle)

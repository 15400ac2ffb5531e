"""A real HTTP server on 127.0.0.1 (ephemeral port, background thread) serving scripted replies to tests.

Each path gets a list of replies served in order (the last one repeats); every request is counted per path,
so tests can assert "zero requests on resume" or "retried exactly twice".
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

OMIT = -1  # content_length value meaning "send no Content-Length header"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before sending anything (to trigger client timeouts)
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    content_length: int | None = None  # None: len(body); OMIT: no header; else the declared (possibly false) length
    truncate_at: int | None = None  # send only this many body bytes, then close
    drip_s: float = 0.0  # pause between body bytes (a server trickling data to hold the client)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 6), seed: int = 0) -> bytes:
    """A tiny real image encoded in ``fmt``."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


class FixtureServer:
    """Context manager: ``with FixtureServer() as server: server.add("/a.png", Reply(...)); server.url("/a.png")``."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, path: str, *replies: Reply) -> str:
        if not replies:
            raise ValueError("at least one reply")
        self.routes[path] = list(replies)
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def _next_reply(self, raw_path: str) -> Reply | None:
        with self._lock:
            key = raw_path if raw_path in self.routes else urlsplit(raw_path).path
            self.hits[key] += 1
            replies = self.routes.get(key)
            if replies is None:
                return None
            index = min(self._served[key], len(replies) - 1)
            self._served[key] += 1
            return replies[index]

    def __enter__(self) -> "FixtureServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                reply = server._next_reply(self.path) or Reply(404, b"not found", "text/plain")
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, size cap): expected in these tests
                self.close_connection = True

            def _send(self, reply: Reply) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                body = reply.body if reply.truncate_at is None else reply.body[: reply.truncate_at]
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 16 * 1024):
                        piece = body[start : start + 16 * 1024]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                declared = len(reply.body) if reply.content_length is None else reply.content_length
                if declared != OMIT:
                    self.send_header("Content-Length", str(declared))
                self.end_headers()
                if reply.drip_s:
                    for index in range(len(body)):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip_s)
                    return
                self.wfile.write(body)
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class FakeClock:
    """Injectable clock + sleep: sleeping advances the clock instantly and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

"""An HTTP CONNECT proxy on loopback that stands in for cluster DNS and Services for a host process: a
client that dials `service.namespace:port` through it (gRPC and Go's HTTP honour HTTPS_PROXY) reaches the
loopback port of the first route whose pattern (fnmatch, on `host:port`) matches; anything else is refused."""

from __future__ import annotations

import fnmatch
import select
import socket
import socketserver
import threading


def target(routes: list[tuple[str, int]], authority: str) -> int | None:
    """The loopback port for `host:port`, or None when no route matches."""
    return next((port for pattern, port in routes if fnmatch.fnmatchcase(authority, pattern)), None)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], 300)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        port = target(self.server.routes, line[1]) if len(line) == 3 and line[0] == "CONNECT" else None
        if port is None:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            self.request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        with upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early := head.split(b"\r\n\r\n", 1)[1]:  # what the client sent before our answer
                upstream.sendall(early)
            _pipe(self.request, upstream)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(routes: list[tuple[str, int]]) -> int:
    """Start the proxy in a daemon thread; returns its loopback port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes = routes
    threading.Thread(target=server.serve_forever, daemon=True, name="connect-proxy").start()
    return server.server_address[1]

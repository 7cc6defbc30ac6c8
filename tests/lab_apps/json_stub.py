"""A stub HTTP/1.1 server that answers every GET with a small JSON body, for the load
generator's tests (loopback only, a free port, stopped by the test that started it)."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from lab_apps.launcher import free_port


class JsonOk(BaseHTTPRequestHandler):
    """Answers ``{"ok":true}`` at once; ``close`` ends each connection after its answer."""

    protocol_version = "HTTP/1.1"
    close = False

    def do_GET(self):  # noqa: N802 - the http.server API
        self.before_answer()
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def before_answer(self) -> None:
        """A subclass's hook: stall, count."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler: type[JsonOk], *, threaded: bool):
    """The stub's URL while it serves: one connection at a time, or a thread per connection."""
    server = (ThreadingHTTPServer if threaded else HTTPServer)(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

"""Serve one page on localhost (``viseme view ... --serve PORT``).

Only 127.0.0.1 is bound: the page carries the user's model and voice, nobody else should
reach it.  ``/`` (and ``/index.html``) answer the page (a HEAD request its headers);
``/favicon.ico`` is empty (204: browsers ask for it on every page, and a 404 is a console error);
anything else is 404.

Example
-------
>>> server = make_server("<p>hi</p>", port=0)          # doctest: +SKIP
>>> server.server_address                               # doctest: +SKIP
('127.0.0.1', 40123)
>>> server.serve_forever()                              # doctest: +SKIP
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


def make_server(page: str = "", port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``page`` on 127.0.0.1:``port`` (0: any free port); call ``serve_forever()``.
    The page may be set later (``server.page = ...``): the port is taken before the page is made,
    so a busy one is refused before any work.

    Raises OSError naming the port when it is taken."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = self._head()
            if body:
                self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802 (link checkers and `curl -I` ask HEAD first; it answered 501)
            self._head()

        def _head(self) -> bytes:
            """The status and headers of the answer; returns the body a GET sends."""
            if self.path.split("?")[0] == "/favicon.ico":  # the page has no icon; a 404 would log a console error
                self.send_response(204)
                self.end_headers()
                return b""
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404)
                return b""
            body = self.server.page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            return body

        def log_message(self, *args):  # quiet: the command prints the address once
            pass

    try:
        server = ThreadingHTTPServer((HOST, port), Handler)
    except OSError as e:
        raise OSError(f"cannot serve on {HOST}:{port} ({e.strerror or e}); choose another --serve port") from None
    server.page = page
    return server


def serve(server: ThreadingHTTPServer, announce=print) -> None:
    """Serve ``server`` (see `make_server`) until Ctrl-C, then close it; ``announce`` gets the URL."""
    host, real_port = server.server_address[:2]
    announce(f"serving on http://{host}:{real_port}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

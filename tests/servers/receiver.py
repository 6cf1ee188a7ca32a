"""A webhook receiver for tests: a real HTTP server on loopback that records every POST.

It can be down (nothing listens on its port), answer 500 to chosen events after reading
them (a receiver that crashed after processing: the sender must retry, and the receiver sees
a repeat with the same event id), and come back on the same port.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers.smtp import free_port


@dataclass
class Received:
    """One POST as it arrived."""

    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        """The parsed JSON body."""
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    """Records POSTs; fail_once holds event ids to answer 500 the first time they arrive."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    fail_once: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Where to send events."""
        return f"http://127.0.0.1:{self.port}/hooks/ticketgate"

    def start(self) -> Receiver:
        """Listen on the port (again)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event_id = self.headers.get("Ticketgate-Event-Id", "")
                with owner.lock:
                    status = 500 if event_id in owner.fail_once else 204
                    owner.fail_once.discard(event_id)
                    owner.received.append(Received(dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

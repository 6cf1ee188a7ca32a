"""A loopback relay to an IMAP server that holds back a client's command: a crash at an exact point.

From the first client command line matching the pattern on, nothing more the client sends reaches
the server (connections stay open, so the client just waits): the server has done every command
before it and none after. A test then kills the client and looks at the mailbox.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from types import TracebackType


class CommandCut:
    """Relay 127.0.0.1:port to host:upstream_port until a client command matches pattern."""

    def __init__(self, host: str, upstream_port: int, pattern: bytes) -> None:
        self.upstream = (host, upstream_port)
        self.pattern = re.compile(pattern)
        self.held = threading.Event()  # set when the matching command was held back
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]

    def __enter__(self) -> CommandCut:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
                self._sockets += [client, server]
                threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
                threading.Thread(target=self._commands, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        """Server to client, as is; an end on one side ends the other."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def _commands(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server, line by line, until the first line matching the pattern."""
        pending = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                pending += data
                while b"\r\n" in pending and not self.held.is_set():
                    line, pending = pending.split(b"\r\n", 1)
                    if self.pattern.search(line):
                        self.held.set()
                    else:
                        server.sendall(line + b"\r\n")
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)

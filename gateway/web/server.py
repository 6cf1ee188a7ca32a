"""uvicorn on the service's own event loop: started beside the mail workers, stopped with them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from gateway.config import HttpConfig
from gateway.errors import TicketgateError

log = logging.getLogger("gateway.web")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (the service owns SIGTERM and tells us to stop),
    and without its sys.exit when the address cannot be bound (an error we report instead)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:
            raise OSError("could not bind the address (in use, or not ours)") from None


class HttpServer:
    """Serve an app on [http] listen until stop() (or the stop event) says so."""

    def __init__(self, app: FastAPI, http: HttpConfig) -> None:
        config = uvicorn.Config(app, host=http.host, port=http.port, log_level="warning",
                                access_log=False, lifespan="off", server_header=False,
                                timeout_graceful_shutdown=10)
        self.server = _Server(config)
        self.listen = http.listen

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until stop is set, then finish the requests in flight (at most 10 s)."""
        task = asyncio.create_task(self.server.serve())
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:  # it ended on its own: it could not start
            waiter.cancel()
            try:
                task.result()
            except OSError as exc:
                raise TicketgateError(f"[http] listen {self.listen}: could not serve: {exc}") from None
            raise TicketgateError(f"[http] listen {self.listen}: the server stopped by itself")
        self.server.should_exit = True
        await task

    @property
    def started(self) -> bool:
        """Listening (after startup)."""
        return bool(self.server.started)

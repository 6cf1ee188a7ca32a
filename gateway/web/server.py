"""uvicorn on the service's own event loop: started beside the mail workers, stopped with them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from gateway.config import HttpConfig

log = logging.getLogger("gateway.web")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the service owns SIGTERM and tells us to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
        if task in done:  # it ended on its own: uvicorn exits when the port is taken
            waiter.cancel()
            with contextlib.suppress(SystemExit):
                task.result()
            raise OSError(f"HTTP server on {self.listen} could not serve (address in use?)")
        self.server.should_exit = True
        await task

    @property
    def started(self) -> bool:
        """Listening (after startup)."""
        return bool(self.server.started)

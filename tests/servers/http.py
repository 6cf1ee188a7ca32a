"""The HTTP door for tests: the real app on a real uvicorn socket on loopback, in its own thread."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from fastapi import FastAPI

from gateway.configmodels import HttpConfig
from gateway.web.server import HttpServer
from tests.servers.smtp import free_port


class ApiServer:
    """Serve an app until stop(); base_url is where to send requests."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = HttpServer(app, HttpConfig(listen=f"127.0.0.1:{self.port}"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await self._server.serve(self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # shown by start() instead of dying silently in the thread
            self._error.append(exc)

    def start(self) -> ApiServer:
        """Start and wait until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if self._error:
                raise RuntimeError(f"HTTP server failed: {self._error[0]!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP server did not start in 20 s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""Serving an ASGI app with uvicorn in the running event loop (CLI and tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

#: Open live streams hold a graceful shutdown this long before they are cut.
SHUTDOWN_GRACE_S = 2


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def server(app: ASGIApp, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        log_config=None,  # cli.py configures logging
    )
    return uvicorn.Server(config)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run ``app`` until the block ends; yields its base URL."""
    port = port or free_port(host)
    srv = server(app, host, port, log_level="warning")
    task = asyncio.create_task(srv.serve())
    try:
        async with asyncio.timeout(30):
            while not srv.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.05)
        yield f"http://{host}:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, SHUTDOWN_GRACE_S + 30)

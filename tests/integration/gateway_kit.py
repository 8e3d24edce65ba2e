"""Helpers for gateway and driver-app tests: the two services in-process, SSE reading."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from dispatcher.config import Settings
from producers.driver.app import create_app as driver_app
from producers.gateway.app import create_app as gateway_app
from producers.gateway.web import serving

PIN = "1234"


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """The gateway and the driver app on free ports; yields their base URLs."""
    async with serving(gateway_app(settings)) as gw, serving(driver_app(settings)) as drv:
        yield gw, drv


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Stream:
    """Reads a server-sent event stream in the background; ``until`` awaits a kind."""

    def __init__(self, client: httpx.AsyncClient, url: str, token: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(client, url, token))

    async def _read(self, client: httpx.AsyncClient, url: str, token: str) -> None:
        try:
            async with client.stream("GET", url, headers=bearer(token), timeout=None) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        async with self._changed:
                            self.events.append(json.loads(line[6:]))
                            self._changed.notify_all()
        finally:
            async with self._changed:
                self._changed.notify_all()

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    async def until(self, kind: str, within_s: float = 30.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            async with self._changed:
                while True:
                    found = [e for e in self.events if e["kind"] == kind]
                    if found:
                        return found[-1]
                    if self._task.done():
                        self._task.result()
                        raise AssertionError(f"stream ended without {kind!r}: {self.kinds()}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), within_s)
        except TimeoutError:
            raise AssertionError(f"no {kind!r} within {within_s}s: {self.kinds()}") from None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task

"""Requests in flight are bounded by the connection pool, so a burst of callers queues instead of
stalling the server (each request holding one pooled connection while waiting for another)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from enclave_api.api.app import create_app
from enclave_api.api.middleware import InFlightLimit, InFlightMiddleware
from enclave_api.context import Enclave
from tests.conftest import bearer
from tests.liveserver import serve


def test_at_most_the_limit_runs_at_once_and_the_rest_wait() -> None:
    running = peak = 0

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def burst() -> list[int]:
        bound = InFlightLimit()
        bound.limit(2)
        transport = httpx.ASGITransport(app=InFlightMiddleware(slow_app, bound))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/") for _ in range(12)))
        return [a.status_code for a in answers]

    assert asyncio.run(burst()) == [200] * 12
    assert peak == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_burst_of_callers_is_served_not_stalled(seeded_enclave: Enclave, tokens: dict[str, str]) -> None:
    """150 simultaneous callers: far more than the pool's connections (this stalled the server for
    the pool's 30 s timeout before requests in flight were bounded)."""
    with serve(create_app(enclave=seeded_enclave)) as base, httpx.Client(timeout=20) as client:

        def call(i: int) -> int:
            path = "/v1/datasets" if i % 2 else "/v1/me"
            return client.get(base + path, headers=bearer(tokens["researcher"])).status_code

        with ThreadPoolExecutor(max_workers=150) as pool:
            statuses = list(pool.map(call, range(300)))
    assert statuses == [200] * 300

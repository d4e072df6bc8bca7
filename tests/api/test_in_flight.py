"""Requests in flight are bounded by the connection pool, so a burst of callers queues instead of
stalling the server (each request holding one pooled connection while waiting for another).

The stall itself shows only under sustained load from many clients: ``benchmarks/bench_load.py``
(200 users) timed out on every request without the bound and has 0 errors with it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from enclave_api.api.middleware import InFlightLimit, InFlightMiddleware


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


def test_reads_have_their_own_bound_and_never_wait_behind_changes() -> None:
    started: list[str] = []
    release_changes = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(scope["method"])
        if scope["method"] == "POST":
            await release_changes.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def mixed() -> list[int]:
        bound = InFlightLimit()
        bound.limit(2, 1)
        transport = httpx.ASGITransport(app=InFlightMiddleware(app, bound))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            changes = [asyncio.create_task(client.post("/")) for _ in range(3)]
            await asyncio.sleep(0.05)
            assert started.count("POST") == 1  # one change at a time: the others wait
            reads = await asyncio.wait_for(asyncio.gather(*(client.get("/") for _ in range(5))), 5)
            release_changes.set()
            answers = [*reads, *await asyncio.gather(*changes)]
        return [a.status_code for a in answers]

    assert asyncio.run(mixed()) == [200] * 8

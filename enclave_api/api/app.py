"""The app factory: ``create_app(settings)`` builds the API around one :class:`Enclave`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from enclave_api.api import problems
from enclave_api.api.middleware import (
    BodyLimitMiddleware,
    InFlightLimit,
    InFlightMiddleware,
    Metrics,
    ObservabilityMiddleware,
    ServicePrefixMiddleware,
)
from enclave_api.api.routes import (
    access,
    audit,
    datasets,
    egress,
    health,
    me,
    projects,
    queries,
    records,
    sessions,
    web_login,
)
from enclave_api.context import Enclave
from enclave_api.logs import configure_logging
from enclave_api.portal import router as portal_router
from enclave_api.services import egress as egress_service
from enclave_api.services import releases as releases_service
from enclave_api.services import sessions as sessions_service
from enclave_api.settings import Settings

API_TITLE = "Secure data enclave API"
log = logging.getLogger("enclave.api")


async def _session_reaper(enclave: Enclave) -> None:
    """End sessions whose grants expired or ended, and stop their servers, every few seconds."""
    while True:
        await asyncio.sleep(enclave.settings.session_check_seconds)
        try:
            ended = await asyncio.to_thread(sessions_service.reap, enclave)
            if ended:
                log.info("ended notebook sessions", extra={"sessions": ended})
        except Exception:
            log.exception("session reaper failed")


async def _checkpoint_timer(enclave: Enclave) -> None:
    """Sign a checkpoint every ``audit_checkpoint_seconds`` while events keep arriving."""
    while True:
        await asyncio.sleep(enclave.settings.audit_checkpoint_seconds)
        try:
            await asyncio.to_thread(enclave.checkpoint_now)
        except Exception:
            log.exception("periodic audit checkpoint failed")


def _recover_queries(enclave: Enclave) -> None:
    failed = releases_service.recover_interrupted(enclave)
    if failed:
        log.warning("failed interrupted DP queries (their budget stays spent)", extra={"count": failed})


async def _recovery_timer(enclave: Enclave) -> None:
    """Now and every ``recovery_check_seconds``: end the work a stopped process left unfinished
    (DP queries failed, egress checks re-run; see ``enclave_api.workers``)."""
    while True:
        try:
            await asyncio.to_thread(_recover_queries, enclave)
            rerun = await asyncio.to_thread(egress_service.recover_interrupted, enclave)
            if rerun:
                log.warning("re-ran interrupted egress checks", extra={"count": rerun})
        except Exception:
            log.exception("recovery of interrupted work failed")
        await asyncio.sleep(enclave.settings.recovery_check_seconds)


def _requests_in_flight(enclave: Enclave) -> tuple[int, int]:
    """How many reads and how many changes may run at once. Requests that each hold a pooled
    connection while waiting for another would stall the server until the pool times out (seen
    with 200 simulated users), so the bounds keep the worst case within the pool: a read holds at
    most two connections (its credential check, its read session), a change three (also a write).
    Requests beyond them wait their turn; on two cores that costs no throughput."""
    pool = enclave.db.engine.pool
    size = getattr(pool, "size", None)
    if not callable(size):
        return 64, 64
    capacity = int(size()) + max(0, int(getattr(pool, "_max_overflow", 0)))
    reads = max(2, capacity // 4)
    return reads, max(2, (capacity - 2 * reads) // 3)


def create_app(settings: Settings | None = None, enclave: Enclave | None = None) -> FastAPI:
    """Build the API. Pass an opened ``enclave`` to share it (tests, CLI), else one is opened
    from ``settings`` when the app starts and closed when it stops."""
    if enclave is None and settings is None:
        raise ValueError("create_app needs settings or an enclave")
    owned = enclave is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned and settings is not None:
            configure_logging(settings.log_json)
            app.state.enclave = Enclave.open(settings)
            # Before serving: no reservation of a crashed query is left looking alive.
            _recover_queries(app.state.enclave)
        app.state.in_flight.limit(*_requests_in_flight(app.state.enclave))
        timers = (
            [
                asyncio.create_task(_checkpoint_timer(app.state.enclave)),
                asyncio.create_task(_session_reaper(app.state.enclave)),
                asyncio.create_task(_recovery_timer(app.state.enclave)),
            ]
            if owned
            else []
        )
        try:
            yield
        finally:
            for timer in timers:
                timer.cancel()
            if owned:
                app.state.enclave.close()  # signs the shutdown checkpoint

    app = FastAPI(title=API_TITLE, version="1", lifespan=lifespan)
    if enclave is not None:
        app.state.enclave = enclave
    effective: Settings = enclave.settings if enclave is not None else settings  # type: ignore[assignment]
    problems.install(app)
    for router in (
        health.router,
        me.router,
        records.router,  # before datasets so /{id}/records is not shadowed
        datasets.router,
        projects.router,
        access.requests_router,
        access.grants_router,
        queries.router,
        egress.router,
        audit.router,
        sessions.hub_router,
        sessions.sessions_router,
        web_login.router,
        portal_router(),
    ):
        app.include_router(router)

    metrics = Metrics()

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=effective.max_json_bytes,
        upload_limit=effective.max_request_bytes,
    )
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.state.in_flight = InFlightLimit()
    app.add_middleware(InFlightMiddleware, limit=app.state.in_flight)
    app.add_middleware(ServicePrefixMiddleware, prefix=effective.hub_service_prefix)
    return app

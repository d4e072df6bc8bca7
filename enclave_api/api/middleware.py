"""ASGI middleware: request size limits, security headers, metrics and access logs."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("enclave.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class _BodyTooLarge(Exception):
    pass


async def _send_problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "status": status, "title": title, "detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


class BodyLimitMiddleware:
    """413 for bodies over the limit, checked on Content-Length and while streaming.

    JSON bodies have a small limit; uploads (multipart) the large one.
    """

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int) -> None:
        self.app, self.json_limit, self.upload_limit = app, json_limit, upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.upload_limit if multipart else self.json_limit
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_problem(
                send, 413, "Payload too large", f"request bodies are limited to {limit} bytes"
            )
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_problem(
                    send, 413, "Payload too large", f"request bodies are limited to {limit} bytes"
                )


class Metrics:
    """Prometheus collectors of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "enclave_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "enclave_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
        )


class ObservabilityMiddleware:
    """Security headers on every response, request metrics and one structured access-log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                existing = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in existing
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - start
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "id", None)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "user": principal,
                },
            )


class ServicePrefixMiddleware:
    """Serves the API also under the path JupyterHub's proxy forwards to it (``/services/<name>``).

    The hub's proxy passes the whole path on; this strips the prefix and records it as the ASGI
    ``root_path``, so ``/services/enclave-api/v1/me`` is ``/v1/me`` with links built under the prefix.
    """

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.prefix:
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = dict(scope)
                scope["path"] = path[len(self.prefix) :] or "/"
                scope["raw_path"] = scope["path"].encode()
                scope["root_path"] = scope.get("root_path", "") + self.prefix
        await self.app(scope, receive, send)


class InFlightLimit:
    """Bounds on requests running at once, set when the app starts (``limit``); unbounded before.

    Reads (GET, HEAD) and changes have bounds of their own, so that reads never wait behind slow
    changes (a DP query holds its slot for its whole run)."""

    READS = frozenset({"GET", "HEAD"})

    def __init__(self) -> None:
        self.reads: anyio.Semaphore | None = None
        self.changes: anyio.Semaphore | None = None

    def limit(self, reads: int, changes: int | None = None) -> None:
        self.reads = anyio.Semaphore(reads)
        self.changes = anyio.Semaphore(reads if changes is None else changes)

    def semaphore(self, method: str) -> anyio.Semaphore | None:
        return self.reads if method in self.READS else self.changes


class InFlightMiddleware:
    """Lets at most the limit of HTTP requests of each kind run at once; the others wait (in
    arrival order)."""

    def __init__(self, app: ASGIApp, limit: InFlightLimit) -> None:
        self.app, self.bound = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        semaphore = self.bound.semaphore(scope.get("method", "")) if scope["type"] == "http" else None
        if semaphore is None:
            await self.app(scope, receive, send)
            return
        async with semaphore:
            await self.app(scope, receive, send)

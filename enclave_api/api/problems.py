"""RFC 9457 problem responses: every error leaves the API through here."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit.schemas import AuditSchemaError
from enclave_api.errors import EnclaveError, IntegrityFailure, LoginFailed

log = logging.getLogger("enclave.api")

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail} | extra
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(location) or "body", "message": error.get("msg", "")})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return f"{first['field']}: {first['message']}", errors


class DenialRecorder:
    """Decides which refused calls (401/403) become ``access.denied`` audit events.

    The first refusal of a kind (same status, caller address, user, endpoint and reason) is recorded
    at once; repeats within ``window`` seconds are counted and folded into the next event of that
    kind (``repeats``), so a client hammering the API cannot flood the log.
    """

    def __init__(self, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.window, self.max_keys = window, max_keys
        self._seen: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[Any, ...]) -> int:
        """How many calls the event for ``key`` should stand for now (0: fold it into a later one)."""
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.window:
                self._seen[key] = (last[0], last[1] + 1)
                return 0
            if len(self._seen) >= self.max_keys:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
            self._seen[key] = (now, 0)
            return 1 + (last[1] if last is not None else 0)


def record_denial(request: Request, exc: EnclaveError, recorder: DenialRecorder) -> None:
    """Audit a refused call: who (if known), from where, what, and why."""
    enclave = getattr(request.app.state, "enclave", None)
    if enclave is None:
        return
    principal = getattr(request.state, "principal", None)
    address = request.client.host if request.client else None
    user = principal.id if principal is not None else None
    # Keyed by the route's template, not the raw path: varying ids must not multiply the events.
    route = getattr(request.scope.get("route"), "path", request.url.path)
    repeats = recorder.take((exc.status, address, user, request.method, route, exc.detail))
    if not repeats:
        return
    subject = {"user": user, "token": principal.token_id if principal is not None else None}
    details = {
        "status": exc.status,
        "method": request.method[:16],
        "path": request.url.path[:300],
        "reason": exc.detail[:500],
        "address": address[:45] if address else None,
        "token_kind": principal.token_kind if principal is not None else None,
        "repeats": repeats,
    }
    try:
        enclave.transact(
            lambda session: enclave.audit.append(
                session, "access.denied", user or "anonymous", subject, details
            )
        )
    except Exception:
        log.exception("could not audit a refused call", extra={"path": request.url.path})


#: How errors are documented in the OpenAPI: every operation may answer these as problem+json.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; some problems add fields (field, errors, budget figures).",
    "type": "object",
    "required": ["type", "status", "title", "detail"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}
PROBLEM_STATUSES = {
    "401": "Unauthenticated: missing, invalid, expired or revoked credential",
    "403": "Not allowed for this caller",
    "404": "Unknown, or not visible to this caller",
    "409": "State conflict (e.g. budget exhausted, wrong state)",
    "413": "Request too large",
    "422": "Invalid input",
    "429": "Too many requests: a rate limit or login throttle (see Retry-After)",
}


def document(app: FastAPI) -> None:
    """Make the OpenAPI say what the API really answers on errors: problem+json, not FastAPI's
    default validation body (clients and fuzzers validate responses against it)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            for schemas in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(schemas, None)
            problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    for status, description in PROBLEM_STATUSES.items():
                        responses[status] = {"description": description, "content": problem_content}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    document(app)
    # One per app: the API's and the portal's refusals fold together, and apps never share counts.
    denials = app.state.denials = DenialRecorder()

    @app.exception_handler(EnclaveError)
    async def _enclave(request: Request, exc: EnclaveError) -> JSONResponse:
        if isinstance(exc, IntegrityFailure):
            log.error("integrity failure", extra={"detail": exc.detail, "path": request.url.path})
        if exc.status in (401, 403) and not isinstance(exc, LoginFailed):
            await run_in_threadpool(record_denial, request, exc, denials)
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(AuditSchemaError)
    async def _audit(request: Request, exc: AuditSchemaError) -> JSONResponse:
        # The change was rolled back with the refused event; this is a server defect, not input.
        log.error("audit event refused", extra={"detail": str(exc), "path": request.url.path})
        return problem(500, "Audit failure", "the change was not made: it could not be audited")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem(422, "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")

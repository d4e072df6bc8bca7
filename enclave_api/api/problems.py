"""RFC 9457 problem responses: every error leaves the API through here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit.schemas import AuditSchemaError
from enclave_api.errors import EnclaveError, IntegrityFailure

log = logging.getLogger("enclave.api")

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail} | extra
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(location) or "body", "message": error.get("msg", "")})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return f"{first['field']}: {first['message']}", errors


def install(app: FastAPI) -> None:
    @app.exception_handler(EnclaveError)
    async def _enclave(request: Request, exc: EnclaveError) -> JSONResponse:
        if isinstance(exc, IntegrityFailure):
            log.error("integrity failure", extra={"detail": exc.detail, "path": request.url.path})
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

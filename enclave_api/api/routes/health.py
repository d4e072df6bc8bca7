"""Liveness: ``GET /healthz`` (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from enclave_api.api.deps import ReadSession
from enclave_api.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(session: ReadSession) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok")

"""The portal: server-rendered pages for custodians, auditors and researchers.

Served by the API process under ``/portal`` (behind the hub: ``/services/enclave-api/portal``). Pages
are thin like the API's routes: they authorise, call the same services, and render Jinja2 templates
(autoescaped). No script runs in the pages; plots are SVG drawn on the server (:mod:`.plots`).

Login is shared with JupyterHub (its OAuth flow sets the same browser cookie) or, when the hub is off,
a password form. Every form carries a CSRF token bound to the login; every page a strict
Content-Security-Policy (:mod:`.web`).
"""

from __future__ import annotations

from fastapi import APIRouter

from enclave_api.portal.routes import auditor, auth, custodian, home, researcher


def router() -> APIRouter:
    """All portal pages, to include in the API app."""
    portal = APIRouter()
    for module in (auth, home, researcher, custodian, auditor):
        portal.include_router(module.router)
    portal.include_router(home.fallback)
    return portal

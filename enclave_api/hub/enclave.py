"""The hub's client of the enclave API: logins, user look-ups, opening and ending notebook sessions.

Authenticator and spawner share one configurable (``c.EnclaveHubClient``) so that the API address
and the hub's credential are set once. The credential is the token of the enclave's ``hub`` service
account; it comes from the environment (``ENCLAVE_HUB_TOKEN``), never from a file in the config.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx
from tornado import web
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable


class EnclaveRefused(web.HTTPError):
    """The enclave said no (e.g. no active grant); ``jupyterhub_message`` is shown to the user as is."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.jupyterhub_message = message


class EnclaveHubClient(LoggingConfigurable):
    """Calls the enclave API as the hub's service account."""

    api_url = Unicode(
        "http://127.0.0.1:8400",
        help="Base URL of the enclave API as the hub reaches it (not the sessions' address).",
    ).tag(config=True)

    token = Unicode(
        help="""Token of the enclave's `hub` service account (role hub).

        Defaults to the environment variable ENCLAVE_HUB_TOKEN; `enclave up` issues one at each start.
        """,
    ).tag(config=True)

    timeout = Float(10.0, help="Seconds an API call may take.").tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get("ENCLAVE_HUB_TOKEN", "")

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.token:
            raise EnclaveRefused(503, "the hub has no enclave credential (ENCLAVE_HUB_TOKEN)")
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with httpx.AsyncClient(base_url=self.api_url, timeout=self.timeout) as client:
                return await client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.log.error("Enclave API unreachable at %s: %s", self.api_url, exc)
            raise EnclaveRefused(503, "the enclave API is unreachable; try again in a minute") from exc

    @staticmethod
    def _problem(response: httpx.Response) -> str:
        try:
            return str(response.json().get("detail") or response.reason_phrase)
        except ValueError:
            return response.reason_phrase

    async def login(self, username: str, password: str) -> dict[str, Any] | None:
        """The user's record if the password is right, else None."""
        response = await self._call(
            "POST", "/v1/hub/login", json={"username": username, "password": password}
        )
        if response.status_code in (401, 422):
            return None
        if response.status_code != 200:
            raise EnclaveRefused(response.status_code, self._problem(response))
        user: dict[str, Any] = response.json()
        return user

    async def user(self, user_id: str) -> dict[str, Any] | None:
        """Account state and active grants, or None for an unknown user."""
        response = await self._call("GET", f"/v1/hub/users/{quote(user_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise EnclaveRefused(response.status_code, self._problem(response))
        user: dict[str, Any] = response.json()
        return user

    async def start_session(self, user_id: str, server: str, address: str) -> dict[str, Any]:
        """Open a session; :class:`EnclaveRefused` carries the enclave's reason when it may not start."""
        body = {"user": user_id, "server": server, "address": address}
        response = await self._call("POST", "/v1/sessions", json=body)
        if response.status_code != 201:
            raise EnclaveRefused(response.status_code, self._problem(response))
        started: dict[str, Any] = response.json()
        return started

    async def end_session(self, session_id: str) -> None:
        """Tell the enclave the server stopped (its credential stops working)."""
        response = await self._call("POST", f"/v1/sessions/{quote(session_id, safe='')}/end", json={})
        if response.status_code != 200:
            raise EnclaveRefused(response.status_code, self._problem(response))

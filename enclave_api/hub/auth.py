"""JupyterHub authenticator backed by the enclave's users.

Passwords are checked by the enclave API (``POST /v1/hub/login``, audited there, Argon2id hashes in the
enclave database); the hub never sees a password hash. Roles come from the enclave: they become the
user's JupyterHub groups (``enclave-<role>``) and are refreshed every ``auth_refresh_age`` seconds, so
a disabled account loses its hub login at the next refresh. Nobody is a JupyterHub admin: a hub admin
could open any researcher's server, and with it the records that server holds.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Instance, default

from enclave_api.hub.enclave import EnclaveHubClient


class EnclaveAuthenticator(Authenticator):  # type: ignore[misc]  # jupyterhub ships no type information
    """Password login against the enclave's accounts (``c.JupyterHub.authenticator_class``)."""

    enclave = Instance(EnclaveHubClient, help="The enclave API client (configure c.EnclaveHubClient).")

    @default("enclave")
    def _default_enclave(self) -> EnclaveHubClient:
        return EnclaveHubClient(parent=self)

    @default("manage_groups")
    def _default_manage_groups(self) -> bool:
        return True

    @default("auth_refresh_age")
    def _default_auth_refresh_age(self) -> int:
        return 300

    @default("refresh_pre_spawn")
    def _default_refresh_pre_spawn(self) -> bool:
        return True

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        """Every account the enclave authenticated may use the hub; what it may do there is the
        enclave's decision (a server needs an active grant)."""
        return True

    @staticmethod
    def _model(user: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": user["id"],
            "admin": False,
            "groups": [f"enclave-{role}" for role in user.get("roles", [])],
            "auth_state": None,
        }

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        username = (data.get("username") or "").strip()
        password = data.get("password") or ""
        if not username or not password:
            return None
        user = await self.enclave.login(username, password)
        if user is None or user.get("disabled"):
            self.log.warning("Failed login for %r", username[:64])
            return None
        return self._model(user)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool | dict[str, Any]:
        """Keep roles in step with the enclave; a disabled or deleted account must log in again."""
        current = await self.enclave.user(user.name)
        if current is None or current.get("disabled"):
            return False
        return self._model(current)

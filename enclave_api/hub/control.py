"""Session control plug-in: how the API stops a notebook server when its session must end.

Ending a session revokes its credential at once (in the database, in the transaction that ends it);
this plug-in then removes the server itself, so that nothing already loaded stays on screen or in a
kernel. Implementations:

* :class:`NoSessionControl` — no hub is attached (``enclave api``): there is no server to stop.
* :class:`JupyterHubControl` — the embedded default: the JupyterHub REST API, as the ``enclave-api``
  service the generated hub configuration registers (scope ``servers``).

The Kubernetes deployment adds one that deletes the user's pod. Chosen in :func:`make_session_control`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

log = logging.getLogger("enclave.sessions")


class SessionControl:
    """Base class. Override :meth:`stop_server`."""

    def stop_server(self, user_id: str, server: str) -> bool:
        """Stop ``user_id``'s server named ``server`` (``""``: the default one).

        Return True once it is stopped or was not running, False if that is not known yet (the
        caller retries later). Never raise for a hub that is down.
        """
        raise NotImplementedError


class NoSessionControl(SessionControl):
    """No hub: nothing runs that could be stopped."""

    def stop_server(self, user_id: str, server: str) -> bool:
        return True


class JupyterHubControl(SessionControl):
    """Stops servers through the JupyterHub REST API (``DELETE /users/{name}/server``)."""

    def __init__(self, api_url: str, token: str, timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def stop_server(self, user_id: str, server: str) -> bool:
        user = quote(user_id, safe="")
        path = f"/users/{user}/servers/{quote(server, safe='')}" if server else f"/users/{user}/server"
        try:
            response = httpx.delete(
                self.api_url + path,
                headers={"Authorization": f"token {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            log.warning(
                "could not reach the hub to stop a server", extra={"user": user_id, "error": str(exc)}
            )
            return False
        # 202: stopping (the hub finishes it), 204: stopped, 400: not running, 404: no such user/server.
        if response.status_code in (202, 204, 400, 404):
            return True
        log.warning(
            "the hub refused to stop a server",
            extra={"user": user_id, "status": response.status_code, "body": response.text[:200]},
        )
        return False


def make_session_control(api_url: str | None, token: str | None) -> SessionControl:
    """The plug-in for these settings: the hub's REST API when configured, else none."""
    if api_url and token:
        return JupyterHubControl(api_url, token)
    return NoSessionControl()

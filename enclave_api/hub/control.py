"""Session control plug-in: how the API stops a notebook server when its session must end.

Ending a session revokes its credential at once (in the database, in the transaction that ends it);
this plug-in then removes the server itself, so that nothing already loaded stays on screen or in a
kernel. Implementations:

* :class:`NoSessionControl` — no hub is attached (``enclave api``): there is no server to stop.
* :class:`JupyterHubControl` — the embedded default: the JupyterHub REST API, as the ``enclave-api``
  service the generated hub configuration registers (scope ``servers``).

* :class:`~enclave_api.hub.kube.KubernetesSessionControl` — the Kubernetes deployment: deletes the
  user's pod (imported only when chosen, so the API needs the ``kubernetes`` client only there).

Chosen by name (``Settings.session_control``) in :func:`make_session_control`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from enclave_api.errors import ConfigurationError

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


def make_session_control(
    api_url: str | None,
    token: str | None,
    choice: str = "auto",
    namespace: str | None = None,
    in_cluster: bool = True,
) -> SessionControl:
    """The plug-in named ``choice``; ``auto``: the hub's REST API when configured, else none.

    A choice that lacks its settings is a :class:`ConfigurationError` (at startup, not at the first
    revocation).
    """
    if choice == "none":
        return NoSessionControl()
    if choice == "kubernetes":
        if not namespace:
            raise ConfigurationError("session_control kubernetes needs ENCLAVE_KUBERNETES_NAMESPACE")
        from enclave_api.hub.kube import KubernetesSessionControl

        return KubernetesSessionControl(namespace, in_cluster=in_cluster)
    if choice == "jupyterhub" and not (api_url and token):
        raise ConfigurationError(
            "session_control jupyterhub needs ENCLAVE_HUB_API_URL and ENCLAVE_HUB_API_TOKEN"
        )
    if choice not in ("auto", "jupyterhub"):
        raise ConfigurationError(f"unknown session control {choice!r}")
    if api_url and token:
        return JupyterHubControl(api_url, token)
    return NoSessionControl()

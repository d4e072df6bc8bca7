"""The API as a JupyterHub OAuth client: one hub login also logs the browser into the enclave API.

JupyterHub registers the API as the ``enclave-api`` service (its proxy forwards ``/services/enclave-api``
to it). A browser sent to ``/services/enclave-api/login`` goes through the hub's OAuth authorize
endpoint, which knows the user from the hub login, and comes back with a code that the API exchanges
(with the service's secret) for the user's identity.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx


class HubOAuthError(Exception):
    """The hub did not confirm who the user is."""


def authorize_url(hub_prefix: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Where to send the browser: the hub's OAuth authorize endpoint (same host, through the proxy)."""
    query = urlencode(
        {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": state}
    )
    return f"{hub_prefix.rstrip('/')}/api/oauth2/authorize?{query}"


def identify(
    hub_api_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str, timeout: float = 10.0
) -> str:
    """Exchange an authorization ``code`` for an access token and return the user's name."""
    api = hub_api_url.rstrip("/")
    try:
        token = httpx.post(
            f"{api}/oauth2/token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
            },
            timeout=timeout,
        )
        if token.status_code != 200:
            raise HubOAuthError(f"the hub refused the code ({token.status_code})")
        access = token.json().get("access_token")
        if not isinstance(access, str) or not access:
            raise HubOAuthError("the hub returned no access token")
        user = httpx.get(f"{api}/user", headers={"Authorization": f"Bearer {access}"}, timeout=timeout)
    except (httpx.HTTPError, ValueError) as exc:
        raise HubOAuthError(f"the hub could not be asked: {exc}") from exc
    if user.status_code != 200:
        raise HubOAuthError(f"the hub did not say who the user is ({user.status_code})")
    name = user.json().get("name")
    if not isinstance(name, str) or not name:
        raise HubOAuthError("the hub named no user")
    return name

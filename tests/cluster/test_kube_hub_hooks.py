"""The hub side on Kubernetes: KubeSpawner's hooks open the enclave session of a pod, hand it its
credential and end it with the pod — against the real enclave API, with JupyterHub's real Spawner
standing in for KubeSpawner (which adds nothing the hooks use)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from jupyterhub import orm
from jupyterhub.spawner import Spawner
from traitlets.config import Config

from enclave_api.context import Enclave
from enclave_api.hub.enclave import EnclaveRefused
from enclave_api.hub.kube import KubeSessionHooks, configure_hub, service_url
from enclave_api.services import sessions
from tests.conftest import audit_events, bearer

SESSION_API_URL = "http://10.96.0.20:8000"
SERVICE_ENV = {
    "HUB_SERVICE_HOST": "10.96.0.10", "HUB_SERVICE_PORT": "8081",
    "ENCLAVE_API_SERVICE_HOST": "10.96.0.20", "ENCLAVE_API_SERVICE_PORT": "8000",
}  # fmt: skip


def hooks(api_url: str, token: str) -> KubeSessionHooks:
    """Hooks as the hub's config builds them (a new instance is a restarted hub: no memory)."""
    c = Config()
    c.EnclaveHubClient.api_url = api_url
    c.EnclaveHubClient.token = token
    c.KubeSessionHooks.session_api_url = SESSION_API_URL
    return KubeSessionHooks(config=c)


def spawner(user: str, server: str = "") -> Spawner:
    """A spawner as the hub holds it: its server's name comes from the hub's database record."""
    return Spawner(
        user=SimpleNamespace(name=user, url=f"/user/{user}/"),
        orm_spawner=orm.Spawner(name=server),
        environment={"TZ": "UTC"},
    )


def me(api_url: str, token: str) -> httpx.Response:
    return httpx.get(f"{api_url}/v1/me", headers=bearer(token), timeout=10)


def open_sessions(enclave: Enclave, user: str) -> list[Any]:
    with enclave.read() as session:
        return [(s.server, s.address) for s in sessions.open_sessions(session, user_ids=[user])]


def test_pod_gets_a_working_credential_that_ends_with_it(
    seeded_enclave: Enclave, live_api: str, hub_credential: str
) -> None:
    pod = spawner("minji.park")
    asyncio.run(hooks(live_api, hub_credential).pre_spawn(pod))
    env = pod.environment
    assert env["TZ"] == "UTC", "the configured environment is kept"
    assert env["ENCLAVE_API_URL"] == SESSION_API_URL
    assert env["ENCLAVE_SESSION_ID"].startswith("ns-")
    # The credential works from the session (a pod's address is unknown at spawn: its first call binds it).
    answer = me(live_api, env["ENCLAVE_API_TOKEN"])
    assert answer.status_code == 200, answer.text
    assert (answer.json()["id"], answer.json()["roles"]) == ("minji.park", ["researcher"])
    # Opened without an address, the session is now bound to its first caller (the pod).
    assert open_sessions(seeded_enclave, "minji.park") == [("", "127.0.0.1")]

    asyncio.run(hooks(live_api, hub_credential).post_stop(pod))  # after a hub restart
    assert me(live_api, env["ENCLAVE_API_TOKEN"]).status_code == 401
    assert open_sessions(seeded_enclave, "minji.park") == []
    ended = [e for e in audit_events(seeded_enclave, "session.ended")
             if e["subject"]["session"] == env["ENCLAVE_SESSION_ID"]]  # fmt: skip
    assert [(e["actor"], e["details"]["reason"]) for e in ended] == [("jupyterhub", "stopped")]


def test_stopping_one_server_ends_only_its_session(
    seeded_enclave: Enclave, live_api: str, hub_credential: str
) -> None:
    default, analysis = spawner("minji.park"), spawner("minji.park", "analysis")
    hub = hooks(live_api, hub_credential)
    asyncio.run(hub.pre_spawn(default))
    asyncio.run(hub.pre_spawn(analysis))
    asyncio.run(hub.post_stop(analysis))
    assert open_sessions(seeded_enclave, "minji.park") == [("", None)]  # no call made with it yet
    assert me(live_api, default.environment["ENCLAVE_API_TOKEN"]).status_code == 200
    assert me(live_api, analysis.environment["ENCLAVE_API_TOKEN"]).status_code == 401


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("jiho.kim", "jiho.kim is not a researcher: notebook sessions are for approved researchers"),
        ("nobody.known", "nobody.known is not an enclave account"),
    ],
)
def test_the_enclave_refuses_before_any_pod_exists(
    seeded_enclave: Enclave, live_api: str, hub_credential: str, user: str, reason: str
) -> None:
    before = len(audit_events(seeded_enclave, "session.started"))
    pod = spawner(user)
    with pytest.raises(EnclaveRefused) as refused:
        asyncio.run(hooks(live_api, hub_credential).pre_spawn(pod))
    assert refused.value.status_code == 403
    assert refused.value.jupyterhub_message == reason
    assert pod.environment == {"TZ": "UTC"}
    assert len(audit_events(seeded_enclave, "session.started")) == before


def test_without_the_hubs_credential_nothing_starts(live_api: str) -> None:
    with pytest.raises(EnclaveRefused, match="ENCLAVE_HUB_TOKEN"):
        asyncio.run(hooks(live_api, "").pre_spawn(spawner("minji.park")))


# ------------------------------------------------------------------------------ the hub's config


def test_configure_hub_wires_kubespawner_and_addresses() -> None:
    c = Config()
    wired = configure_hub(c, SERVICE_ENV)
    assert c.KubeSpawner.pre_spawn_hook == wired.pre_spawn
    assert c.KubeSpawner.post_stop_hook == wired.post_stop
    # Addresses, not names: sessions have no DNS.
    assert c.JupyterHub.hub_connect_url == "http://10.96.0.10:8081"
    assert wired.session_api_url == "http://10.96.0.20:8000"
    c.KubeSessionHooks.session_api_url = "http://10.96.7.7:8000"
    assert configure_hub(c, SERVICE_ENV).session_api_url == "http://10.96.7.7:8000"


def test_service_urls_are_addresses() -> None:
    assert (
        service_url({"HUB_SERVICE_HOST": "fd00::a", "HUB_SERVICE_PORT": "8081"}, "hub")
        == "http://[fd00::a]:8081"
    )
    with pytest.raises(
        ValueError, match="no ENCLAVE_API_SERVICE_HOST/_PORT: the Service enclave-api did not exist"
    ):
        configure_hub(Config(), {k: v for k, v in SERVICE_ENV.items() if not k.startswith("ENCLAVE_API")})
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        service_url({"HUB_SERVICE_HOST": "hub.enclave.svc", "HUB_SERVICE_PORT": "8081"}, "hub")

"""End to end through a real JupyterHub and configurable-http-proxy with the sandbox spawner.

A generated ``jupyterhub_config.py`` (DummyAuthenticator, a service token for the test) starts a
server through the REST API, reaches it through the proxy, then kills the hub (SIGKILL): the session
dies with it, and the restarted hub's ``SandboxSpawner.cleanup_leftovers(c)`` removes what was left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import httpx
import pytest
from traitlets.config import Config

from enclave_api.hub import sandbox
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import RUNTIME, TEST_PREFIX, UID_RANGE, LoopbackServices, free_port

REPO = Path(__file__).resolve().parents[2]
CHP_CANDIDATES = (REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy",)


def find_proxy() -> str:
    for candidate in CHP_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("configurable-http-proxy")
    if found is None:
        pytest.fail(
            "configurable-http-proxy not installed (npm install --prefix .hub configurable-http-proxy)"
        )
    return found


class Hub:
    """One JupyterHub process on loopback ports, driven through its REST API with a service token."""

    def __init__(self, workdir: Path, services: LoopbackServices, home_root: Path) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.public_port, self.hub_port, self.proxy_api_port = free_port(), free_port(), free_port()
        self.config = workdir / "jupyterhub_config.py"
        self.config.write_text(
            textwrap.dedent(f"""
            from enclave_api.hub.spawner import SandboxSpawner

            c = get_config()  # noqa: F821
            c.JupyterHub.bind_url = "http://127.0.0.1:{self.public_port}"
            c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.hub_port}"
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
            c.ConfigurableHTTPProxy.command = [{find_proxy()!r}]
            c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
            c.JupyterHub.authenticator_class = "dummy"
            c.Authenticator.allow_all = True
            c.JupyterHub.services = [{{"name": "e2e", "api_token": {self.token!r}}}]
            c.JupyterHub.load_roles = [{{
                "name": "e2e",
                "scopes": ["admin:users", "admin:servers", "access:servers", "list:users"],
                "services": ["e2e"],
            }}]
            c.JupyterHub.spawner_class = SandboxSpawner
            c.SandboxSpawner.runtime_dir = {str(RUNTIME)!r}
            c.SandboxSpawner.home_root = {str(home_root)!r}
            c.SandboxSpawner.name_prefix = {TEST_PREFIX!r}
            c.SandboxSpawner.api_port = {services.api_port}
            c.SandboxSpawner.mem_limit = "768M"
            c.SandboxSpawner.enclave_sessions = False
            SandboxSpawner.cleanup_leftovers(c)
            """)
        )
        self.log = workdir / "jupyterhub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(self.config)],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait(lambda: self.api("GET", "/").status_code == 200, "hub API up")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.request(method, f"{self.url}/hub/api{path}", headers=headers, timeout=10, **kwargs)

    def wait(self, condition: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"hub exited ({self.proc.returncode}) waiting for {what}:\n{self.tail()}")
            try:
                if condition():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}:\n{self.tail()}")

    def server(self, user: str) -> dict[str, Any]:
        model: dict[str, Any] = self.api("GET", f"/users/{user}").json()
        return dict(model.get("servers", {}).get("", {}))

    def spawn(self, user: str) -> dict[str, Any]:
        if self.api("GET", f"/users/{user}").status_code == 404:
            assert self.api("POST", f"/users/{user}").status_code == 201
        response = self.api("POST", f"/users/{user}/server")
        assert response.status_code in (201, 202), response.text
        self.wait(lambda: self.server(user).get("ready") is True, f"{user}'s server ready")
        return self.server(user)

    def proxied(self, user: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.get(f"{self.url}/user/{user}/{path}", headers=headers, timeout=10)

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.kill_orphaned_proxy()

    def kill_orphaned_proxy(self) -> None:
        pid_file = self.workdir / "jupyterhub-proxy.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if Path(f"/proc/{pid}/cmdline").exists() and b"node" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
            pid_file.unlink()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def hub(
    tmp_path: Path, loopback_services: LoopbackServices, home_root: Path, places: sandbox.Places
) -> Iterator[Hub]:
    the_hub = Hub(tmp_path, loopback_services, home_root)
    yield the_hub
    the_hub.stop()


def session_resources(places: sandbox.Places) -> dict[int, list[str]]:
    return sandbox.leftover_resources(places)


@pytest.mark.slow
def test_jupyterhub_spawns_sandboxed_servers_and_recovers_from_a_crash(
    hub: Hub, places: sandbox.Places, home_root: Path
) -> None:
    before = set(session_resources(places))
    hub.start()
    server = hub.spawn("frank")
    assert server["url"] == "/user/frank/"

    new = set(session_resources(places)) - before
    assert len(new) == 1
    index = new.pop()
    session = sandbox.Session.load(places, f"{TEST_PREFIX}{index}")
    assert session is not None
    uid = session.spec.uid

    # Through the proxy: the server, its hub-checked token auth, and the lock-down.
    status = hub.proxied("frank", "api/status")
    assert status.status_code == 200, status.text
    lab = hub.proxied("frank", "lab")
    assert lab.status_code == 200
    assert "@jupyterlab/docmanager-extension:download" in lab.text  # disabledExtensions
    assert hub.proxied("frank", "files/notes.txt").status_code == 403

    # A session of a live owner (this test process) must survive the restarted hub's cleanup.
    home, live_uid = sandbox.ensure_home(home_root, "gina", UID_RANGE)
    spec = sandbox.SandboxSpec("gina", live_uid, home, RUNTIME, (1, 2), sandbox.Limits(pids=64))
    live = sandbox.Session.create(spec, places, IPv4Network("10.200.0.0/16"))
    try:
        crash_and_restart(hub, places, session, index)
        assert len(session_resources(places)[live.slot.index]) == 8
        config = Config()
        config.SandboxSpawner.name_prefix = TEST_PREFIX
        assert SandboxSpawner.cleanup_leftovers(config) == []  # nothing left; the live one is kept
    finally:
        live.teardown()

    # Spawning works again; stopping through the API removes everything.
    hub.spawn("frank")
    assert hub.proxied("frank", "api/status").status_code == 200
    respawned = set(session_resources(places)) - before
    assert len(respawned) == 1
    again = sandbox.Session.load(places, f"{TEST_PREFIX}{respawned.pop()}")
    assert again is not None
    assert again.spec.uid == uid  # the home keeps the user's uid
    response = hub.api("DELETE", "/users/frank/server")
    assert response.status_code in (202, 204)
    hub.wait(lambda: hub.server("frank") == {}, "frank's server stopped")
    assert set(session_resources(places)) - before == set()
    # (a zombie pid-1 of the sandbox may wait a moment for the host's init to reap it)
    hub.wait(
        lambda: not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid_of(p) == uid],
        "no process of the session's uid",
        timeout=10,
    )


def crash_and_restart(hub: Hub, places: sandbox.Places, session: sandbox.Session, index: int) -> None:
    """SIGKILL the hub: its session dies with it (bwrap --die-with-parent), its resources stay
    behind until the restarted hub's config calls ``SandboxSpawner.cleanup_leftovers(c)``."""
    hub.crash()
    deadline = time.monotonic() + 10
    while session.processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.processes() == set()
    assert len(session_resources(places).get(index, [])) == 8

    hub.start()
    assert index not in session_resources(places)
    # The hub then notices the server died while it was down and forgets it.
    hub.wait(lambda: hub.server("frank") == {}, "the dead server forgotten")


def _uid_of(proc_dir: Path) -> int | None:
    try:
        status = (proc_dir / "status").read_text()
    except OSError:
        return None
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])

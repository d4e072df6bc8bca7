"""Helpers of the sandbox tier shared by its fixtures and by ``crashing_hub.py`` (a stand-in hub process).

* :class:`LoopbackServices` / :func:`start_loopback_services` — stand-in enclave API and hub API on
  ``127.0.0.1`` and a TCP listener on every host address that no session may reach.
* :func:`new_spawner` — a :class:`SandboxSpawner` made the way JupyterHub makes one.
* :func:`wait_ready` — waits until a spawned server answers at the session address.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jupyterhub
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User

from enclave_api.hub.spawner import SandboxSpawner

RUNTIME = Path(os.environ.get("ENCLAVE_RUNTIME_DIR", "/opt/enclave-runtime"))
TEST_PREFIX = "enct"
#: The spawner's default uid range (homes made directly by tests use it too).
UID_RANGE = (int(SandboxSpawner.uid_min.default_value), int(SandboxSpawner.uid_max.default_value))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _StubHandler(BaseHTTPRequestHandler):
    """Answers like the hub API's root (version header) or a plain JSON service."""

    service = "api"
    hits: list[str]

    def _answer(self) -> None:
        self.hits.append(f"{self.command} {self.path} from {self.client_address[0]}")
        body = json.dumps({"service": self.service, "version": jupyterhub.__version__}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@dataclass
class LoopbackServices:
    api_port: int
    hub_port: int
    forbidden_port: int
    api_hits: list[str] = field(default_factory=list)
    hub_hits: list[str] = field(default_factory=list)
    forbidden_hits: list[str] = field(default_factory=list)


def _serve(port: int, service: str, hits: list[str]) -> ThreadingHTTPServer:
    handler = type(f"{service}Handler", (_StubHandler,), {"service": service, "hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _listen_everywhere(hits: list[str]) -> socket.socket:
    """A TCP listener on 0.0.0.0 (every host address) that records whoever connects."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 0))  # noqa: S104 - the point: reachable on every host address but for the rules
    sock.listen(16)

    def accept() -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            hits.append(peer[0])
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return sock


def start_loopback_services() -> tuple[LoopbackServices, Callable[[], None]]:
    """Start the stand-in services; return them and a function that stops them."""
    services = LoopbackServices(api_port=free_port(), hub_port=free_port(), forbidden_port=0)
    api = _serve(services.api_port, "api", services.api_hits)
    hub = _serve(services.hub_port, "hub", services.hub_hits)
    listener = _listen_everywhere(services.forbidden_hits)
    services.forbidden_port = int(listener.getsockname()[1])

    def stop() -> None:
        for server in (api, hub):
            server.shutdown()
            server.server_close()
        listener.close()

    return services, stop


def spawner_config(services: LoopbackServices, home_root: Path, **traits: Any) -> dict[str, Any]:
    """Trait values of a test spawner (small limits so the limit probes are quick)."""
    return {
        "runtime_dir": str(RUNTIME),
        "home_root": str(home_root),
        "name_prefix": TEST_PREFIX,
        "api_port": services.api_port,
        "hub_port": services.hub_port,
        "mem_limit": 768 * 1024**2,
        "pids_limit": 256,
        "cpu_limit": 1.0,
        "graceful_stop_timeout": 3,
        "enclave_sessions": False,  # the bare sandbox: the stand-in API issues no session credentials
        **traits,
    }


def new_spawner(username: str, hub_api_port: int, **traits: Any) -> SandboxSpawner:
    """A spawner for ``username`` made the way JupyterHub makes one (User + ORM spawner and server)."""
    db = orm.new_session_factory("sqlite:///:memory:")()
    orm_user = orm.User(name=username)
    db.add(orm_user)
    orm_spawner = orm.Spawner(user=orm_user, name="")
    orm_spawner.server = orm.Server(base_url=f"/user/{username}/")
    db.add(orm_spawner)
    db.commit()
    hub = Hub(ip="127.0.0.1", port=hub_api_port, base_url="/hub/")
    user = User(orm_user, {"hub": hub})
    spawner = user._new_spawner("", spawner_class=SandboxSpawner, **traits)
    spawner.api_token = f"test-token-{username}"
    assert isinstance(spawner, SandboxSpawner)
    return spawner


def server_url(spawner: SandboxSpawner, path: str = "api") -> str:
    return f"http://{spawner.ip}:{spawner.port}/user/{spawner.user.name}/{path}"


def wait_ready(spawner: SandboxSpawner, timeout: float = 30.0) -> float:
    """Poll the server's ``/api`` at the session address until it answers 200; return the seconds.

    Cheap while it is not listening yet (a TCP connect every 50 ms), so that waiting for many servers
    at once does not take the CPU they need to start.
    """
    start = time.monotonic()
    url = server_url(spawner)
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - start < timeout:
            if spawner.proc is not None and spawner.proc.poll() is not None:
                raise AssertionError(f"server exited with {spawner.proc.returncode}")
            try:
                socket.create_connection((spawner.ip, spawner.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return time.monotonic() - start
            time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout} s")

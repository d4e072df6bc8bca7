"""A live enclave for the hub tier and its benchmark: the API (uvicorn, demo world) and JupyterHub
with the configuration ``enclave up`` generates (enclave authenticator, sandbox spawner, proxy, idle
culler), on loopback ports of their own and the test session prefix.

* :func:`enclave_world` — context manager yielding a :class:`World`; everything is stopped and every
  sandbox of the test prefix removed afterwards.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.demo.seed import seed_demo
from enclave_api.hub import sandbox
from enclave_api.hub.embedded import HubLayout, HubProcess, find_proxy
from enclave_api.services import sessions
from enclave_api.settings import Settings
from tests.hub.browser import Browser
from tests.hub.support import RUNTIME, TEST_PREFIX, free_port


@dataclass
class World:
    settings: Settings
    enclave: Enclave  # the API's own, for reading the audit log and the DB
    hub: HubProcess
    api_url: str
    logins: dict[str, dict[str, str]]
    tokens: dict[str, str]

    @property
    def hub_url(self) -> str:
        return self.hub.layout.bind_url

    def api(self, method: str, path: str, role: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=30, **kwargs)

    def browser(self, role: str) -> tuple[Browser, str]:
        login = self.logins[role]
        browser = Browser(self.hub_url)
        page = browser.login(login["username"], login["password"])
        assert page.status_code == 200, page.text[:2000]
        return browser, login["username"]

    def hub_api(self, method: str, path: str) -> httpx.Response:
        headers = {"Authorization": f"token {self.hub.service_token}"}
        return httpx.request(method, self.hub.layout.hub_api_url + path, headers=headers, timeout=60)


def _serve_api(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{settings.port}/healthz", timeout=2).status_code == 200:
                return server, thread
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the enclave API did not start")


@contextmanager
def enclave_world(tmp: Path, home_root: Path, prefix: str = TEST_PREFIX, **layout: Any) -> Iterator[World]:
    data_dir = tmp / "enclave"
    api_port = free_port()
    settings = Settings(data_dir=data_dir, port=api_port, log_json=False, session_check_seconds=1)
    enclave = Enclave.open(settings)
    seed_demo(enclave, "demo", patients=300)
    with enclave.write() as session:
        sessions.end_all(enclave, session, sessions.EndReason.ENCLAVE_RESTARTED)
        hub_token = sessions.issue_hub_credential(enclave, session)
    proxy = find_proxy()
    assert proxy is not None, "configurable-http-proxy is not installed (make test installs it)"
    hub_layout = HubLayout(
        state_dir=tmp / "hub",
        proxy_command=proxy,
        bind_url=f"http://127.0.0.1:{free_port()}",
        hub_port=free_port(),
        proxy_api_port=free_port(),
        api_port=api_port,
        runtime_dir=str(RUNTIME),
        home_root=str(home_root),
        name_prefix=prefix,
        mem_limit="768M",
        **layout,
    )
    hub = HubProcess(hub_layout, hub_token)
    api_settings = settings.model_copy(
        update={"hub_api_url": hub_layout.hub_api_url, "hub_api_token": SecretStr(hub.service_token)}
    )
    enclave.close()
    server, thread = _serve_api(api_settings)
    reader = Enclave.open(settings)
    try:
        hub.start()
        world = World(
            settings=api_settings,
            enclave=reader,
            hub=hub,
            api_url=f"http://127.0.0.1:{api_port}",
            logins=json.loads((data_dir / "demo-logins.json").read_text()),
            tokens=json.loads((data_dir / "demo-tokens.json").read_text()),
        )
        yield world
    finally:
        hub.stop()
        server.should_exit = True
        thread.join(timeout=30)
        reader.close()
        sandbox.cleanup_leftovers(sandbox.Places(prefix=prefix), everything=True)

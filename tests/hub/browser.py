"""A researcher's browser, as far as the tests need one: hub login form, spawn form, JupyterLab's
REST API and kernel websocket (cookies and XSRF tokens exactly as a browser sends them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class KernelError(AssertionError):
    """Code sent to a kernel raised; the message carries the traceback."""


@dataclass
class Browser:
    base_url: str
    user: str = ""
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, follow_redirects=True, timeout=30)

    def close(self) -> None:
        self.client.close()

    def xsrf(self, path: str) -> str:
        for cookie in self.client.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.rstrip("/") == path.rstrip("/"):
                return str(cookie.value)
        raise AssertionError(f"no _xsrf cookie for {path}")

    def login(self, username: str, password: str) -> httpx.Response:
        """Fill in the hub's login form; the response is the page the hub sends the user to."""
        self.client.get("/hub/login").raise_for_status()
        response = self.client.post(
            "/hub/login",
            data={"username": username, "password": password, "_xsrf": self.xsrf("/hub/")},
        )
        self.user = username
        return response

    def spawn_page(self) -> httpx.Response:
        return self.client.get("/hub/spawn")

    def spawn(self, timeout: float = 90.0) -> float:
        """Press *Start* on the spawn form and wait until the server answers; return the seconds taken."""
        started = time.monotonic()
        response = self.client.post("/hub/spawn", data={"_xsrf": self.xsrf("/hub/")})
        if response.status_code >= 400:
            raise AssertionError(f"spawn refused ({response.status_code}): {response.text[:2000]}")
        self.wait_server(timeout)
        return time.monotonic() - started

    def post_spawn_form(self) -> httpx.Response:
        return self.client.post("/hub/spawn", data={"_xsrf": self.xsrf("/hub/")})

    def wait_server(self, timeout: float = 90.0) -> None:
        """Wait until opening JupyterLab lands in JupyterLab (not on the hub's pending page)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.client.get(f"/user/{self.user}/lab")
            if response.status_code == 200 and response.url.path.startswith(f"/user/{self.user}/lab"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.user}'s server did not become ready in {timeout:.0f} s")

    def open_lab(self) -> httpx.Response:
        """Open JupyterLab (completes the OAuth hand-off, sets the server's cookies)."""
        return self.client.get(f"/user/{self.user}/lab")

    def server_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        prefix = f"/user/{self.user}/"
        headers = {"X-XSRFToken": self.xsrf(prefix)}
        return self.client.request(method, f"{prefix}api/{path}", headers=headers, **kwargs)

    def run(self, code: str, timeout: float = 180.0) -> str:
        """Run ``code`` in a new kernel of the user's server; return its stdout. Raise KernelError."""
        kernel = self.server_api("POST", "kernels", json={"name": "python3"})
        kernel.raise_for_status()
        kernel_id = kernel.json()["id"]
        try:
            return asyncio.run(self._execute(kernel_id, code, timeout))
        finally:
            self.server_api("DELETE", f"kernels/{kernel_id}")

    async def _execute(self, kernel_id: str, code: str, timeout: float) -> str:
        prefix = f"/user/{self.user}/"
        xsrf = self.xsrf(prefix)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.client.cookies.jar)
        url = (
            self.base_url.replace("http", "ws", 1) + f"{prefix}api/kernels/{kernel_id}/channels?_xsrf={xsrf}"
        )
        request = HTTPRequest(url, headers={"Cookie": cookies, "X-XSRFToken": xsrf})
        connection = await websocket_connect(request)
        msg_id = uuid.uuid4().hex
        connection.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.user,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        error: str | None = None
        replied = idle = False
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KernelError(
                        f"no reply from the kernel in {timeout:.0f} s; output so far:\n{''.join(out)}"
                    )
                raw = await asyncio.wait_for(connection.read_message(), remaining)
                if raw is None:
                    raise KernelError(f"kernel websocket closed; output so far:\n{''.join(out)}")
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    error = (
                        "\n".join(content.get("traceback", [])) or f"{content['ename']}: {content['evalue']}"
                    )
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True  # iopub: every output of the request came before this
                if replied and idle:
                    break
        finally:
            await _close(connection)
        if error is not None:
            raise KernelError(f"{error}\nstdout:\n{''.join(out)}")
        return "".join(out)


async def _close(connection: Any) -> None:
    """Close the kernel websocket and wait for the close handshake, so that its socket is really
    closed before the event loop ends (else it leaks and warns in some later test)."""
    connection.close()
    with contextlib.suppress(Exception):
        while await asyncio.wait_for(connection.read_message(), 5) is not None:
            pass
    stream = getattr(connection, "stream", None)
    if stream is not None:
        stream.close()

"""The welcome notebook: it runs top to bottom in a session against the demo world, and
:func:`~enclave_api.hub.welcome.install_welcome` puts it into a home without ever replacing a file.

No root needed (unlike the rest of this tier): the notebook's code cells run in one fresh interpreter
with the session's environment, against the real API served by uvicorn on loopback.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nbformat
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from enclave_api.api.app import create_app
from enclave_api.client import EnclaveClient
from enclave_api.context import Enclave
from enclave_api.hub.welcome import WELCOME_DIR, install_welcome
from enclave_api.models import Release
from tests.conftest import audit_events, bearer, session_token

NOTEBOOK = WELCOME_DIR / "Welcome.ipynb"
RESEARCHER = "minji.park"
EXPORTED = ("wdbc_by_diagnosis.csv", "wdbc_by_diagnosis.csv.release.json")


def notebook_script(sources: list[str]) -> str:
    """The code cells as one Python script that runs them in order in one namespace, as a kernel
    would: a cell's trailing expression is displayed (``repr`` and ``_repr_html_``, as Jupyter does),
    and a marker line before each cell names the one that failed."""
    body: list[ast.stmt] = []
    for index, source in enumerate(sources):
        tree = ast.parse(source, f"<code cell {index}>")
        body += ast.parse(f"print('### code cell {index}', flush=True)").body
        statements = tree.body
        if statements and isinstance(statements[-1], ast.Expr):
            shown = ast.unparse(statements.pop().value)
            statements += ast.parse(
                f"_value = ({shown})\n"
                "if _value is not None:\n"
                "    print(repr(_value))\n"
                "    if hasattr(_value, '_repr_html_'):\n"
                "        _value._repr_html_()\n"
            ).body
        body += statements
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[])))


def _code_cells() -> list[str]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a background thread; yield its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, ws="none", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


def test_the_notebook_is_clean_and_small() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and "code" in kinds
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
            # Plain Python only: no magics, no shell escapes.
            assert not any(line.lstrip().startswith(("%", "!")) for line in cell.source.splitlines())


def test_the_notebook_runs_top_to_bottom_in_a_session(seeded_enclave: Enclave, tmp_path: Path) -> None:
    token = session_token(seeded_enclave, RESEARCHER)
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "welcome.py"
    script.write_text(notebook_script(_code_cells()), encoding="utf-8")

    with _serving(create_app(enclave=seeded_enclave)) as url:
        env = os.environ | {"ENCLAVE_API_URL": url, "ENCLAVE_API_TOKEN": token}
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        failed = [line for line in run.stdout.splitlines() if line.startswith("### code cell")][-1:]
        assert run.returncode == 0, f"{failed}\n{run.stderr}\n--- stdout ---\n{run.stdout}"
        with httpx.Client(base_url=url, headers=bearer(token), timeout=60) as api:
            mine = api.get("/v1/egress-requests").raise_for_status().json()
            assert len(mine) == 1
            request = api.get(f"/v1/egress-requests/{mine[0]['id']}").raise_for_status().json()

    for name in EXPORTED:
        assert (home / name).is_file()
    with seeded_enclave.read() as session:
        releases = list(session.scalars(select(Release).where(Release.requester_id == RESEARCHER)))
    assert [(r.dataset_id, r.status) for r in releases] == [("wdbc", "released")]
    assert sum(r.epsilon for r in releases) <= 0.5  # the demo grant (ε = 3) affords several runs
    assert [e["subject"]["release"] for e in audit_events(seeded_enclave, "query.released")] == [
        releases[0].id
    ]

    assert request["requester"] == RESEARCHER
    assert sorted(f["name"] for f in request["files"]) == sorted(EXPORTED)
    by_name = {check["name"]: check for check in request["checks"]}
    assert by_name[EXPORTED[0]]["dp_release"] == releases[0].id
    assert request["status"] == "in_review", json.dumps(request["checks"], indent=1)
    assert all(check["outcome"] != "block" for check in request["checks"])


def _ids() -> tuple[int, int]:
    """Owner of the copies: some other user as root (so chown is really exercised), else ourselves."""
    return (4242, 4343) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def test_install_welcome_copies_each_notebook_private_to_the_user(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    uid, gid = _ids()

    installed = install_welcome(home, uid, gid)

    notebooks = sorted(p.name for p in WELCOME_DIR.glob("*.ipynb"))
    assert "Welcome.ipynb" in notebooks
    assert [p.name for p in installed] == notebooks
    for copy in installed:
        assert copy.parent == home
        assert copy.read_bytes() == (WELCOME_DIR / copy.name).read_bytes()
        info = copy.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert (info.st_uid, info.st_gid) == (uid, gid)
    assert install_welcome(home, uid, gid) == []  # a second start changes nothing


def test_install_welcome_keeps_what_the_user_changed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    mine = home / "Welcome.ipynb"
    mine.write_text('{"my": "edits"}', encoding="utf-8")
    mine.chmod(0o640)

    assert install_welcome(home, *_ids()) == []
    assert mine.read_text(encoding="utf-8") == '{"my": "edits"}'
    assert stat.S_IMODE(mine.stat().st_mode) == 0o640


@pytest.mark.parametrize("target_exists", [True, False], ids=["symlink", "dangling-symlink"])
def test_install_welcome_never_writes_through_a_symlink(tmp_path: Path, target_exists: bool) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    outside = tmp_path / "outside.txt"
    if target_exists:
        outside.write_text("not yours", encoding="utf-8")
    (home / "Welcome.ipynb").symlink_to(outside)

    assert install_welcome(home, *_ids()) == []
    assert outside.exists() == target_exists
    if target_exists:
        assert outside.read_text(encoding="utf-8") == "not yours"


def test_install_welcome_refuses_a_home_that_is_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "home").symlink_to(real)

    with pytest.raises(OSError):  # noqa: PT011 - ELOOP or ENOTDIR, depending on the kernel
        install_welcome(tmp_path / "home", *_ids())
    assert list(real.iterdir()) == []


def test_wait_egress_polls_until_the_checks_are_done_or_times_out() -> None:
    """The real client against a stand-in server whose checks finish on the third poll (the real API
    checks within the submission, so it never shows ``checking`` to a poll)."""
    statuses = iter(["submitted", "checking", "in_review"])
    polls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        polls.append(request.url.path)
        return httpx.Response(200, json={"id": "eg-1", "status": next(statuses, "checking")})

    http = httpx.Client(base_url="http://enclave", transport=httpx.MockTransport(answer))
    enclave = EnclaveClient("http://enclave", "token", http=http)

    assert enclave.wait_egress("eg-1", interval=0.01)["status"] == "in_review"
    assert polls == ["/v1/egress-requests/eg-1"] * 3
    statuses = iter(["checking"] * 1000)
    with pytest.raises(TimeoutError, match="eg-1 still checking"):
        enclave.wait_egress("eg-1", timeout=0.05, interval=0.01)


def test_notebook_script_runs_cells_in_order_and_shows_trailing_values(tmp_path: Path) -> None:
    script = tmp_path / "cells.py"
    script.write_text(notebook_script(["x = 20", "x + 22", "print('side')\nNone", "raise SystemExit(3)"]))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert run.returncode == 3
    assert run.stdout.splitlines() == ["### code cell 0", "### code cell 1", "42", "### code cell 2", "side",
                                       "### code cell 3"]  # fmt: skip

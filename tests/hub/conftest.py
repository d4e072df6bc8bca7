"""Fixtures of the sandbox tier: real sandboxes, real ``jupyterhub-singleuser``, root only.

Fixtures:

* ``host_checked`` — fails the tier (never skips it) unless running as root with the sandbox tools
  and the session runtime (``scripts/build-runtime.sh``) in place: `make test` runs as root here
  and in CI, and a sandbox suite that silently did not run would prove nothing.
* ``loopback_services`` — the stand-in enclave API and hub API on ``127.0.0.1`` (the hub one answers
  the single-user server's version check and activity reports) and a TCP listener on every host
  address at a port no session may reach (see ``support.py``).
* ``home_root`` — a fresh directory of homes (0711) under /tmp, removed afterwards.
* ``places`` — where sessions of the test prefix ``enct`` live (never the hub's ``encl``); leftovers
  of an interrupted earlier run are removed first.
* ``make_spawner`` — ``make_spawner(username, **traits)`` builds a :class:`SandboxSpawner` the way
  JupyterHub does (``User`` + ORM spawner and server, in-memory database) with small limits; every
  spawner it made is stopped when the module ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from enclave_api.hub import sandbox
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import (
    RUNTIME,
    TEST_PREFIX,
    LoopbackServices,
    new_spawner,
    spawner_config,
    start_loopback_services,
)


@pytest.fixture(scope="session")
def host_checked() -> None:
    if os.geteuid() != 0:
        pytest.fail("the sandbox tier needs root (network namespaces, nftables, uids): run make test as root")
    try:
        sandbox.check_host()
    except sandbox.SandboxUnavailable as exc:
        pytest.fail(f"sandbox tools missing: {exc} (make system-deps)")
    if not (RUNTIME / "bin" / "jupyterhub-singleuser").exists():
        pytest.fail(f"no session runtime at {RUNTIME}: run scripts/build-runtime.sh")


@pytest.fixture(scope="session")
def loopback_services(host_checked: None) -> Iterator[LoopbackServices]:
    services, stop = start_loopback_services()
    yield services
    stop()


@pytest.fixture(scope="session")
def home_root(host_checked: None) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="enclave-homes-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def places(host_checked: None) -> sandbox.Places:
    test_places = sandbox.Places(prefix=TEST_PREFIX)
    sandbox.cleanup_leftovers(test_places)  # sessions of an earlier, interrupted test run
    return test_places


@pytest.fixture(scope="module")
def make_spawner(
    loopback_services: LoopbackServices, home_root: Path, places: sandbox.Places
) -> Iterator[Callable[..., SandboxSpawner]]:
    made: list[SandboxSpawner] = []

    def make(username: str, **traits: Any) -> SandboxSpawner:
        config = spawner_config(loopback_services, home_root, **traits)
        spawner = new_spawner(username, loopback_services.hub_port, **config)
        made.append(spawner)
        return spawner

    yield make
    for spawner in made:
        with contextlib.suppress(Exception):
            asyncio.run(spawner.stop(now=True))

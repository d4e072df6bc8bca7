"""Resource limits from inside sessions: a fork bomb and a memory hog next to a live server, CPU quota,
and the rlimit fallback for hosts without cgroups."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from pathlib import Path

import httpx
import pytest

from enclave_api.hub import sandbox
from enclave_api.hub.sandbox import Limits, SandboxSpec, Session
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import RUNTIME, UID_RANGE, LoopbackServices, server_url, wait_ready

PYTHON = str(RUNTIME / "bin" / "python")
MIB = 1024**2

FORK_BOMB = """
import os, time
def bomb():
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
if os.fork() == 0:
    bomb()
time.sleep(2)  # when this process ends, its pid namespace and every bomb process in it go
"""

MEMORY_HOG = """
import sys
hog = b"x" * int(sys.argv[1])
print("survived", len(hog))
"""

CPU_BURN = """
import os, time
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
times = os.times()
print(times.children_user + times.children_system)
"""

FORK_COUNT = """
import os, time
count = 0
try:
    while count < 10000:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        count += 1
except OSError as exc:
    print(count, exc.errno)
"""


@pytest.fixture(scope="module")
def carol(make_spawner: Callable[..., SandboxSpawner]) -> SandboxSpawner:
    spawner = make_spawner("carol")
    asyncio.run(spawner.start())
    wait_ready(spawner)
    return spawner


def cgroup_value(session: Session, controller: str, file: str) -> str:
    return (session.cgroup.path(controller) / file).read_text().strip()


def server_answers(spawner: SandboxSpawner) -> bool:
    return httpx.get(server_url(spawner), timeout=5).status_code == 200


def test_limits_are_written_to_the_cgroups(carol: SandboxSpawner) -> None:
    session = carol.session
    assert session is not None
    assert int(cgroup_value(session, "memory", "memory.limit_in_bytes")) == 768 * MIB
    assert cgroup_value(session, "pids", "pids.max") == "256"
    assert cgroup_value(session, "cpu", "cpu.cfs_quota_us") == "100000"
    assert session.processes() <= session.cgroup.pids()  # everything of the session is accounted


def test_fork_bomb_is_contained_by_the_pids_limit(carol: SandboxSpawner) -> None:
    session = carol.session
    assert session is not None
    bomb = session.popen([PYTHON, "-c", FORK_BOMB])
    try:
        time.sleep(1.0)
        assert int(cgroup_value(session, "pids", "pids.current")) <= 256
        assert int(cgroup_value(session, "pids", "pids.events").split()[1]) > 0  # forks were refused
        assert subprocess.run(["true"], check=False).returncode == 0  # the host still forks
        assert server_answers(carol)
    finally:
        bomb.wait(timeout=30)
    deadline = time.monotonic() + 10
    while int(cgroup_value(session, "pids", "pids.current")) > 100 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert int(cgroup_value(session, "pids", "pids.current")) <= 100
    assert server_answers(carol)


def test_memory_hog_is_killed_by_the_memory_limit(carol: SandboxSpawner) -> None:
    session = carol.session
    assert session is not None
    result = session.run([PYTHON, "-c", MEMORY_HOG, str(2 * 768 * MIB)], timeout=60)
    assert "survived" not in result.stdout
    assert result.returncode != 0
    oom = dict(line.split() for line in cgroup_value(session, "memory", "memory.oom_control").splitlines())
    assert int(oom["oom_kill"]) > 0
    assert int(cgroup_value(session, "memory", "memory.max_usage_in_bytes")) <= 768 * MIB
    assert server_answers(carol)  # the OOM killer took the hog, not the server


@pytest.fixture
def bare_session(
    home_root: Path, places: sandbox.Places, loopback_services: LoopbackServices
) -> Iterator[Callable[..., Session]]:
    """Sessions without a server, for limits that need their own settings."""
    made: list[Session] = []

    def make(username: str, limits: Limits, use_cgroups: bool = True) -> Session:
        home, uid = sandbox.ensure_home(home_root, username, UID_RANGE)
        ports = (loopback_services.api_port, loopback_services.hub_port)
        spec = SandboxSpec(username, uid, home, RUNTIME, ports, limits, use_cgroups)
        session = Session.create(spec, places, IPv4Network("10.200.0.0/16"))
        made.append(session)
        return session

    yield make
    for session in made:
        session.teardown()


def test_cpu_quota_caps_cpu_time(bare_session: Callable[..., Session]) -> None:
    session = bare_session("dora", Limits(memory_bytes=512 * MIB, pids=64, cpu=0.25))
    result = session.run([PYTHON, "-c", CPU_BURN], timeout=30)
    assert result.returncode == 0, result.stderr
    # Two busy processes for 1.5 s wall could use 3 CPU-seconds; the quota allows 0.375.
    assert float(result.stdout) < 0.7


def test_rlimit_fallback_limits_processes_and_memory(bare_session: Callable[..., Session]) -> None:
    session = bare_session("rhea", Limits(memory_bytes=512 * MIB, pids=48), use_cgroups=False)
    assert not session.cgroup.path("pids").exists()
    forks = session.run([PYTHON, "-c", FORK_COUNT], timeout=30)
    count, error = forks.stdout.split()
    assert int(count) < 48
    assert error == "11"  # EAGAIN
    hog = session.run([PYTHON, "-c", MEMORY_HOG, str(1024 * MIB)], timeout=30)
    assert "survived" not in hog.stdout
    assert "MemoryError" in hog.stderr

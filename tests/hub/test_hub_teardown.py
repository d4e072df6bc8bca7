"""Clean teardown on stop, also through state restored after a hub restart.

A real hub crash and the leftover cleanup at the next start are in ``test_hub_jupyterhub.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

import httpx
import pytest

from enclave_api.hub import sandbox
from enclave_api.hub.sandbox import Limits, SandboxSpec, Session
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import RUNTIME, TEST_PREFIX, UID_RANGE, server_url, wait_ready


def processes_of_uid(uid: int, *, zombies: bool = True) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if str(uid) in fields["Uid"].split() and (zombies or not fields["State"].strip().startswith("Z")):
                found.append(int(entry.name))
    return found


def no_process_left(uid: int) -> bool:
    """Nothing of the uid runs; a zombie pid-1 of the sandbox is reaped by the host's init soon after."""
    return processes_of_uid(uid, zombies=False) == [] and wait_until(lambda: processes_of_uid(uid) == [])


def resources_of(places: sandbox.Places, name: str) -> list[str]:
    index = sandbox.slot_index(places.prefix, name)
    assert index is not None
    return sandbox.leftover_resources(places).get(index, [])


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def describe(pids: set[int]) -> str:
    """Each pid with its state and command line (what kept a session alive, when a test fails)."""
    lines = []
    for pid in sorted(pids):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            state, command = "gone", ""
        lines.append(f"{pid} {state} {command[:200]}")
    return "\n".join(lines) or "no processes"


def test_stop_through_restored_state_removes_every_trace(
    make_spawner: Callable[..., SandboxSpawner], places: sandbox.Places
) -> None:
    first = make_spawner("erin")
    asyncio.run(first.start())
    wait_ready(first)
    session = first.session
    assert session is not None
    name, uid, url = session.name, session.spec.uid, server_url(first)
    kinds = sorted(r.split()[0] for r in resources_of(places, name))
    assert kinds == ["cgroup"] * 4 + ["netns", "nft", "state", "veth"]
    assert processes_of_uid(uid)
    state = first.get_state()
    assert state["sandbox"] == name

    # A hub restarted with this state finds the session again...
    restored = make_spawner("erin")
    restored.load_state(state)
    assert asyncio.run(restored.poll()) is None
    # ...while state naming the same slot but another session id (stale) never touches it.
    stale = make_spawner("erin")
    stale.load_state({**state, "session_id": "0" * 32})
    assert asyncio.run(stale.poll()) == 0
    asyncio.run(stale.stop())
    assert len(resources_of(places, name)) == 8
    assert httpx.get(url, timeout=5).status_code == 200

    # Stopping through the restored state: the server gets SIGTERM, then everything goes.
    asyncio.run(restored.stop())
    assert first.proc is not None
    first.proc.wait(timeout=10)  # (the old hub's child; a real restarted hub has no such zombie)
    assert resources_of(places, name) == []
    assert no_process_left(uid)
    assert asyncio.run(restored.poll()) == 0
    assert "sandbox" not in restored.get_state()
    with pytest.raises(httpx.ConnectError):  # EHOSTUNREACH from the pool's unreachable route, at once
        httpx.get(url, timeout=2)
    assert session.spec.home.is_dir()  # the home stays for the next session


def test_a_dead_server_is_seen_by_poll_and_cleaned_by_stop(places: sandbox.Places, home_root: Path) -> None:
    home, uid = sandbox.ensure_home(home_root, "kim", UID_RANGE)
    spec = SandboxSpec("kim", uid, home, RUNTIME, (1, 2), Limits(pids=64))
    session = Session.create(spec, places, IPv4Network("10.200.0.0/16"))
    proc = session.popen(["/bin/sleep", "60"])
    spawner = SandboxSpawner(name_prefix=TEST_PREFIX)
    spawner.load_state({"sandbox": session.name, "session_id": session.session_id, "pid": proc.pid})
    assert asyncio.run(spawner.poll()) is None
    proc.kill()
    proc.wait()
    # A killed sandbox's processes may take a while to be reaped on a loaded 2-core machine.
    assert wait_until(lambda: asyncio.run(spawner.poll()) is not None, timeout=30), describe(
        session.live_processes()
    )
    asyncio.run(spawner.stop())
    # The sandbox's own init may linger as a zombie for a moment on a loaded machine.
    assert wait_until(lambda: resources_of(places, session.name) == []), resources_of(places, session.name)

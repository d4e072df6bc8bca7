"""Worker identities: a process that is gone is told apart from one that runs or runs elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from enclave_api import workers
from tests.conftest import dead_worker


def test_this_process_is_alive_and_an_exited_one_is_gone() -> None:
    me = workers.current()
    host, boot, pid, start = me.split("/")
    assert int(pid) == os.getpid() and start.isdigit() and host and boot
    assert not workers.gone(me)
    assert workers.gone(dead_worker())


def test_a_reused_pid_with_another_start_time_is_gone() -> None:
    host, boot, pid, start = workers.current().split("/")
    assert workers.gone(f"{host}/{boot}/{pid}/{int(start) + 1}")


def test_a_killed_unreaped_child_is_gone() -> None:
    code = "from enclave_api import workers; print(workers.current(), flush=True); input()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        worker = child.stdout.readline().strip()
        assert not workers.gone(worker)
        os.kill(child.pid, signal.SIGKILL)
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not workers.gone(worker) and datetime.now(UTC) < deadline:  # a zombie until reaped
            time.sleep(0.01)
        assert workers.gone(worker)
    finally:
        child.kill()
        child.communicate()


def test_nothing_is_proven_about_other_machines_or_unreadable_identities() -> None:
    _, boot, pid, start = workers.current().split("/")
    for worker in (
        f"another-host/{boot}/{pid}/{start}",
        f"another-host/{boot}/999999999/1",
        "host/boot/pid/start",
        "",
        None,
        "a/b/c",
        f"{workers.current().rsplit('/', 1)[0]}/?",
    ):
        assert not workers.gone(worker), worker


def test_abandoned_when_gone_or_past_the_lease() -> None:
    now = datetime.now(UTC)
    lease = timedelta(minutes=10)
    assert not workers.abandoned(workers.current(), now - timedelta(minutes=9), now, lease)
    assert workers.abandoned(workers.current(), now - timedelta(minutes=11), now, lease)
    assert workers.abandoned(dead_worker(), now, now, lease)
    assert workers.abandoned(None, now - timedelta(minutes=11), now, lease)
    assert not workers.abandoned(None, now, now, lease)

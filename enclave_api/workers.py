"""Which process does a piece of work, and whether that process is provably gone.

Work that spans more than one transaction (a DP query between its budget reservation and its
release, an egress request's automatic checks) is stamped with the process doing it. After a crash
the work is found again and ended: at once when its process is provably gone, otherwise when its
lease has run out (a process on another machine cannot be inspected from here).

A worker is ``host/boot/pid/start``: the host name, the kernel's boot id, the process id and the
process's start time in clock ticks since boot. Host name and boot id together identify one kernel
and one namespace of process ids (containers of a pod each have their own host name); the start time
tells a reused process id from the original.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

PROC = Path("/proc")


def _start_ticks(pid: int) -> str | None:
    """Field 22 of ``/proc/PID/stat`` (after the command name, which may hold spaces and
    parentheses); None when there is no such process or only its zombie is left."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@cache
def _machine() -> str:
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        boot = "noboot"
    return f"{socket.gethostname()[:64]}/{boot}"


def current() -> str:
    """This process as a worker (computed per call: a forked child is another worker)."""
    pid = os.getpid()
    return f"{_machine()}/{pid}/{_start_ticks(pid) or '?'}"


def gone(worker: str | None) -> bool:
    """True only when ``worker`` ran on this machine and that process no longer exists."""
    parts = (worker or "").split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != _machine() or not parts[2].isdigit():
        return False
    if parts[3] == "?":  # no /proc where it ran: nothing can be proven
        return False
    pid = int(parts[2])
    started = _start_ticks(pid)
    return started is None or started != parts[3]


def abandoned(worker: str | None, since: datetime, now: datetime, lease: timedelta) -> bool:
    """Work started at ``since`` by ``worker`` will not be finished by it: its process is gone, or
    the lease ran out (the longest the work may take)."""
    return gone(worker) or since < now - lease

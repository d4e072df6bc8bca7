"""Benchmark the local sandbox spawner: spawn-to-ready, stop, and many idle sessions at once.

    sudo .venv/bin/python -m benchmarks.bench_sandbox [--spawns 10] [--concurrent 10]

Drives :class:`~enclave_api.hub.spawner.SandboxSpawner` directly (as JupyterHub does, with a stand-in
hub API and enclave API on 127.0.0.1) and runs the real ``jupyterhub-singleuser`` from the session
runtime in each sandbox. Measures

* spawn-to-ready: from ``start()`` until the server answers ``GET /user/<name>/api`` at the session
  address, over ``--spawns`` sequential spawns (p50, p95, max; target p50 ≤ 3 s), and the time
  ``stop()`` takes (graceful: SIGTERM, then the whole sandbox removed);
* ``--concurrent`` sessions started at once: time until all answer, then, after they settle, the
  resident memory of each idle session (the sum of VmRSS of its processes, and its memory cgroup's
  usage, page cache included), and the time to stop them all.

Needs root and the runtime (``scripts/build-runtime.sh``); the sessions' own logs go to a file.
Sessions use the name prefix ``encb``, so a running hub's sessions are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from enclave_api.hub import sandbox
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import (
    RUNTIME,
    LoopbackServices,
    new_spawner,
    spawner_config,
    start_loopback_services,
    wait_ready,
)

TARGET_P50_S = 3.0
PREFIX = "encb"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def sessions_log(path: Path) -> Iterator[TextIO]:
    """Send fds 1 and 2 (inherited by the sessions) to ``path``; yield a stream to the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    out = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield out
    finally:
        os.dup2(saved, 1)
        os.dup2(saved, 2)
        os.close(saved)
        out.close()


def session_rss_bytes(spawner: SandboxSpawner) -> int:
    assert spawner.session is not None
    total = 0
    for pid in spawner.session.processes():
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            total += (
                next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) * 1024
            )
    return total


def cgroup_usage_bytes(spawner: SandboxSpawner) -> int | None:
    assert spawner.session is not None
    usage = spawner.session.cgroup.path("memory") / "memory.usage_in_bytes"
    return int(usage.read_text()) if usage.exists() else None


def make(services: LoopbackServices, homes: Path, name: str) -> SandboxSpawner:
    return new_spawner(name, services.hub_port, **spawner_config(services, homes, name_prefix=PREFIX))


async def sequential(services: LoopbackServices, homes: Path, spawns: int, out: TextIO) -> None:
    ready, stops = [], []
    for attempt in range(spawns + 1):  # the first one warms the page cache and is not counted
        spawner = make(services, homes, "bench-seq")
        start = time.perf_counter()
        await spawner.start()
        await asyncio.to_thread(wait_ready, spawner, 60.0)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        await spawner.stop()
        stopped = time.perf_counter() - start
        if attempt:
            ready.append(elapsed)
            stops.append(stopped)
    p50 = statistics.median(ready)
    print(
        f"spawn-to-ready over {spawns} spawns: p50 {p50:.2f} s, p95 {percentile(ready, 0.95):.2f} s, "
        f"max {max(ready):.2f} s (target p50 <= {TARGET_P50_S:.1f} s: ratio {p50 / TARGET_P50_S:.2f})",
        file=out,
    )
    print(
        f"stop (graceful, whole sandbox removed): p50 {statistics.median(stops):.2f} s, "
        f"max {max(stops):.2f} s",
        file=out,
    )


async def concurrent(services: LoopbackServices, homes: Path, count: int, out: TextIO) -> None:
    spawners = [make(services, homes, f"bench-{i}") for i in range(count)]
    start = time.perf_counter()
    await asyncio.gather(*(spawner.start() for spawner in spawners))
    started = time.perf_counter() - start
    readiness = await asyncio.gather(*(asyncio.to_thread(wait_ready, s, 120.0) for s in spawners))
    all_ready = time.perf_counter() - start
    print(
        f"{count} concurrent sessions: sandboxes built and started in {started:.2f} s, all ready after "
        f"{all_ready:.2f} s (each ready after p50 {statistics.median(readiness):.2f} s of waiting)",
        file=out,
    )
    await asyncio.sleep(5)  # let start-up work finish: idle sessions
    rss = [session_rss_bytes(s) / 2**20 for s in spawners]
    usage = [u / 2**20 for s in spawners if (u := cgroup_usage_bytes(s)) is not None]
    print(
        f"idle session RSS: mean {statistics.mean(rss):.0f} MiB (min {min(rss):.0f}, max {max(rss):.0f})"
        + (f"; memory cgroup usage incl. page cache: mean {statistics.mean(usage):.0f} MiB" if usage else ""),
        file=out,
    )
    start = time.perf_counter()
    await asyncio.gather(*(spawner.stop() for spawner in spawners))
    print(f"stopping all {count}: {time.perf_counter() - start:.2f} s", file=out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--spawns", type=int, default=10, help="sequential spawns timed")
    parser.add_argument("--concurrent", type=int, default=10, help="sessions started at once")
    args = parser.parse_args(argv)
    try:
        sandbox.check_host()
    except sandbox.SandboxUnavailable as exc:
        print(f"sandbox benchmark skipped: {exc}")
        return
    if not (RUNTIME / "bin" / "jupyterhub-singleuser").exists():
        print(f"sandbox benchmark skipped: no session runtime at {RUNTIME} (scripts/build-runtime.sh)")
        return
    places = sandbox.Places(prefix=PREFIX)
    sandbox.cleanup_leftovers(places)
    services, stop_services = start_loopback_services()
    homes = Path(tempfile.mkdtemp(prefix="enclave-bench-homes-", dir="/tmp"))
    homes.chmod(0o711)
    log = Path(tempfile.gettempdir()) / "enclave-bench-sandbox.log"
    try:
        with sessions_log(log) as out:
            print(f"(session logs: {log}; load average {os.getloadavg()[0]:.2f})", file=out)
            asyncio.run(sequential(services, homes, args.spawns, out))
            asyncio.run(concurrent(services, homes, args.concurrent, out))
    finally:
        sandbox.cleanup_leftovers(places, everything=True)  # only this process uses the prefix
        stop_services()
        shutil.rmtree(homes, ignore_errors=True)


if __name__ == "__main__":
    main()

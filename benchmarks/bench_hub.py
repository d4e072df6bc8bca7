"""Notebook sessions through the real hub: what a researcher waits for after pressing *Start*.

A live enclave (API with the demo world, JupyterHub with the generated configuration, proxy, culler;
see ``tests/hub/world.py``); the demo researcher's server is started through the hub's REST API and
counted ready when the hub says so. Every layer is on: the grant check and the session credential
at the enclave API, the welcome notebook, namespace + veth + nftables, bubblewrap, uid, cgroups. The
reference is the bare sandbox of ``bench_sandbox`` (same machine, same run of ``make bench``).

    python -m benchmarks.bench_hub [--spawns N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.hub.support import RUNTIME
from tests.hub.world import World, enclave_world

USER = "minji.park"
PREFIX = "ench"  # its own sessions: never the tests' or a running hub's


def _ready(world: World) -> bool:
    servers = world.hub_api("GET", f"/users/{USER}").json().get("servers", {})
    return bool(servers.get("", {}).get("ready"))


def _gone(world: World) -> bool:
    return not world.hub_api("GET", f"/users/{USER}").json().get("servers")


def _wait(condition: object, world: World, what: str, timeout: float = 120.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if condition(world):  # type: ignore[operator]
            return time.perf_counter() - start
        time.sleep(0.05)
    raise RuntimeError(f"{what} took longer than {timeout:.0f} s:\n{world.hub.log_tail()}")


def spawn_cycle(world: World) -> tuple[float, float]:
    """Seconds from the spawn request to ready, and from the stop request to gone."""
    start = time.perf_counter()
    response = world.hub_api("POST", f"/users/{USER}/server")
    if response.status_code not in (201, 202):
        raise RuntimeError(f"spawn refused: {response.status_code} {response.text}")
    _wait(_ready, world, "spawn")
    ready = time.perf_counter() - start
    start = time.perf_counter()
    world.hub_api("DELETE", f"/users/{USER}/server")
    _wait(_gone, world, "stop")
    return ready, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=10)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not (RUNTIME / "bin" / "jupyterhub-singleuser").exists():
        print("hub benchmark not run: needs root and the session runtime (make bench builds it)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="enclave-bench-hub-", dir="/tmp"))
    tmp.chmod(0o711)  # the sandbox uids traverse it to their homes
    homes = tmp / "homes"
    homes.mkdir()
    homes.chmod(0o711)
    try:
        with enclave_world(tmp, homes, prefix=PREFIX) as world:
            browser, _ = world.browser("researcher")  # the hub learns the user at the first login
            browser.close()
            spawn_cycle(world)  # warm-up: page cache, first home and welcome notebook
            ready, stops = zip(*(spawn_cycle(world) for _ in range(args.spawns)), strict=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    quantiles = statistics.quantiles(ready, n=20)
    print(
        f"through JupyterHub, every layer on ({args.spawns} spawns): spawn-to-ready "
        f"p50 {statistics.median(ready):.2f} s, p95 {quantiles[18]:.2f} s (target p50 <= 3 s); "
        f"stop {statistics.median(stops):.2f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()

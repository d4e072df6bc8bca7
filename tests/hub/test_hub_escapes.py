"""Escape probes from inside real sandboxed sessions (two users' ``jupyterhub-singleuser`` servers).

Alice's and Bob's servers are spawned through :class:`SandboxSpawner`; a test host lives in its own
network namespace (10.201.0.2) and IPv4 forwarding is switched on for the module, so that only the
session's nftables rules stand between a session and that host. The probes (``session_probes.py``)
run inside Alice's session through the same netns/setpriv/bwrap wrapper and cgroups as her server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave_api.hub import sandbox
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import RUNTIME, UID_RANGE, LoopbackServices, server_url, wait_ready

PROBES = Path(__file__).with_name("session_probes.py")
REPO = Path(__file__).resolve().parents[2]
TEST_HOST_NS, TEST_HOST_VETH, TEST_HOST_PEER = "enctxhost", "enctxa", "enctxb"
TEST_HOST_IP, TEST_HOST_GATEWAY = "10.201.0.2", "10.201.0.1"
TEST_HOST_TCP, TEST_HOST_UDP = 8080, 5300

LISTENER = """
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept(); print("tcp", port, peer[0], flush=True); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(512); print("udp", port, peer[0], flush=True); s.sendto(data, peer)
for target, port in ((tcp, 8080), (udp, 5300), (udp, 53)):
    threading.Thread(target=target, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


@dataclass
class RecordingHost:
    """A host in its own netns, reachable from the machine, recording every packet it gets."""

    hits: list[str]

    def hits_from(self, network: str) -> list[str]:
        net = ipaddress.ip_network(network)
        return [h for h in self.hits if ipaddress.ip_address(h.split()[2]) in net]


@pytest.fixture(scope="module")
def ip_forwarding() -> Iterator[None]:
    """Routing on, as on a host that forwards for other reasons: the sandbox must not rely on it off."""
    knob = Path("/proc/sys/net/ipv4/ip_forward")
    before = knob.read_text().strip()
    knob.write_text("1")
    yield
    knob.write_text(before)


@pytest.fixture(scope="module")
def test_host(host_checked: None, ip_forwarding: None) -> Iterator[RecordingHost]:
    ip("netns", "del", TEST_HOST_NS, check=False)
    ip("link", "del", TEST_HOST_VETH, check=False)
    ip("netns", "add", TEST_HOST_NS)
    ip("link", "add", TEST_HOST_VETH, "type", "veth", "peer", "name", TEST_HOST_PEER, "netns", TEST_HOST_NS)
    ip("addr", "add", f"{TEST_HOST_GATEWAY}/30", "dev", TEST_HOST_VETH)
    ip("link", "set", TEST_HOST_VETH, "up")
    ip("-n", TEST_HOST_NS, "addr", "add", f"{TEST_HOST_IP}/30", "dev", TEST_HOST_PEER)
    ip("-n", TEST_HOST_NS, "link", "set", TEST_HOST_PEER, "up")
    ip("-n", TEST_HOST_NS, "link", "set", "lo", "up")
    ip("-n", TEST_HOST_NS, "route", "add", "default", "via", TEST_HOST_GATEWAY)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", TEST_HOST_NS, sys.executable, "-c", LISTENER],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    host = RecordingHost(hits=[])
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: host.hits.extend(line.strip() for line in stdout), daemon=True)
    reader.start()
    try:
        yield host
    finally:
        proc.kill()
        proc.wait()
        reader.join(timeout=5)
        stdout.close()
        ip("netns", "del", TEST_HOST_NS, check=False)
        ip("link", "del", TEST_HOST_VETH, check=False)


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """A stand-in for the enclave's data directory (0700, a secret inside)."""
    path = Path(tempfile.mkdtemp(prefix="enclave-data-"))
    (path / "secrets").mkdir()
    (path / "secrets" / "token_pepper").write_text("do-not-read")
    yield path
    for file in sorted(path.rglob("*"), reverse=True):
        file.unlink() if file.is_file() else file.rmdir()
    path.rmdir()


@dataclass
class Sessions:
    alice: SandboxSpawner
    bob: SandboxSpawner
    ready_seconds: dict[str, float]


@pytest.fixture(scope="module")
def sessions(make_spawner: Callable[..., SandboxSpawner], home_root: Path) -> Sessions:
    # Bob's own Jupyter config tries to undo the lock-down; user config is disabled for sessions.
    bob_home, bob_uid = sandbox.ensure_home(home_root, "bob", UID_RANGE)
    config_dir = bob_home / ".jupyter"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"extra_services": []}}))
    (bob_home / "secret.txt").write_text("bob's notes")
    for path in (config_dir, config_dir / "jupyter_server_config.json", bob_home / "secret.txt"):
        os.chown(path, bob_uid, bob_uid)

    alice, bob = make_spawner("alice"), make_spawner("bob")

    async def start_both() -> None:
        await asyncio.gather(alice.start(), bob.start())

    started = time.monotonic()
    asyncio.run(start_both())
    ready = {name: wait_ready(spawner) for name, spawner in (("alice", alice), ("bob", bob))}
    ready["both"] = time.monotonic() - started
    return Sessions(alice, bob, ready)


@pytest.fixture(scope="module")
def abstract_listener() -> Iterator[str]:
    """An abstract Unix socket listening on the host (reachable from the host's netns only)."""
    name = f"enclave-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + name)
    sock.listen(1)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect("\0" + name)  # control: it does answer here
    probe.close()
    yield name
    sock.close()


def host_lan_address() -> str:
    pools = [ipaddress.ip_network(n) for n in ("10.200.0.0/16", "10.201.0.0/16", "127.0.0.0/8")]
    for address in sorted(sandbox.host_addresses()):
        if not any(address in pool for pool in pools):
            return str(address)
    pytest.fail("the host has no address outside loopback and the test pools")


@pytest.fixture(scope="module")
def probe_report(
    abstract_listener: str,
    sessions: Sessions,
    test_host: RecordingHost,
    loopback_services: LoopbackServices,
    data_dir: Path,
    home_root: Path,
) -> dict[str, str]:
    alice, bob = sessions.alice.session, sessions.bob.session
    assert alice is not None and bob is not None
    targets: dict[str, Any] = {
        "host_ip": str(alice.slot.host_ip),
        "host_lan_ip": host_lan_address(),
        "api_port": loopback_services.api_port,
        "hub_port": loopback_services.hub_port,
        "forbidden_port": loopback_services.forbidden_port,
        "session_port": sessions.bob.port,
        "other_session_ip": str(bob.slot.session_ip),
        "other_host_ip": str(bob.slot.host_ip),
        "test_host_ip": TEST_HOST_IP,
        "test_host_tcp_port": TEST_HOST_TCP,
        "test_host_udp_port": TEST_HOST_UDP,
        "other_home": str(bob.spec.home),
        "other_home_mount": bob.spec.home_mount,
        "own_home_mount": alice.spec.home_mount,
        "home_root": str(home_root),
        "data_dir": str(data_dir),
        "repository": str(REPO),
        "state_dir": str(alice.places.state_dir),
        "runtime_dir": str(RUNTIME),
        "abstract_socket": "@" + abstract_listener,
    }
    # Control: from the host itself the test host does answer (so a blocked probe means the rules).
    socket.create_connection((TEST_HOST_IP, TEST_HOST_TCP), timeout=2).close()
    result = alice.run([str(RUNTIME / "bin" / "python"), "-c", PROBES.read_text(), json.dumps(targets)])
    assert result.returncode == 0, result.stderr
    time.sleep(0.3)  # let late packets arrive at the listeners
    report: dict[str, str] = json.loads(result.stdout)
    return report


PROBE_PROCESSES = {"bwrap", "python", "python3", "ip", "nft", "unshare", "mount"}


def is_blocked_tcp(outcome: str) -> bool:
    return outcome in ("timeout", "error ECONNREFUSED", "error ENETUNREACH", "error EADDRNOTAVAIL")


def is_error(outcome: str) -> bool:
    return outcome.startswith("error ")


def failed_command(outcome: str) -> bool:
    return outcome.startswith("exit ") and not outcome.startswith("exit 0")


EXPECTED: dict[str, Callable[[str], bool]] = {
    "allowed_api": lambda o: o.startswith("HTTP/1.0 200"),
    "allowed_hub": lambda o: o.startswith("HTTP/1.0 200"),
    "tcp_loopback_listener": lambda o: o == "error ECONNREFUSED",  # the session's own loopback
    "tcp_loopback_api_port": lambda o: o == "error ECONNREFUSED",
    "tcp_host_end_other_port": lambda o: o == "timeout",
    "tcp_host_end_ssh": lambda o: o == "timeout",
    "tcp_host_lan_address": lambda o: o == "timeout",
    "tcp_host_lan_api_port": lambda o: o == "timeout",
    "tcp_other_session_server": lambda o: o == "timeout",
    "tcp_other_session_host_end_api": lambda o: o == "timeout",
    "tcp_test_host": lambda o: o == "timeout",
    "udp_test_host": lambda o: o == "sent",  # sending works; arriving does not (checked host-side)
    "udp_host_end_api_port": lambda o: o == "sent",
    "dns_test_host": lambda o: o == "no answer",
    "dns_host_end": lambda o: o == "no answer",
    "dns_host_lan_address": lambda o: o == "no answer",
    "dns_resolver_lookup": is_error,
    "ipv6_addresses": lambda o: o == "none",
    "tcp_ipv6_loopback": is_blocked_tcp,
    "unix_abstract_host_socket": lambda o: o == "error ECONNREFUSED",  # abstract sockets are per netns
    "raw_socket_icmp": lambda o: o == "error EPERM",
    "raw_socket_tcp": lambda o: o == "error EPERM",
    "packet_socket": lambda o: o == "error EPERM",
    "ping_socket": is_error,
    "ip_route_add": failed_command,
    "ip_route_replace_default": failed_command,
    "ip_addr_add": failed_command,
    "ip_link_down": failed_command,
    "nft_list_ruleset": failed_command,
    "nft_add_table": failed_command,
    "unshare_user_net": failed_command,
    "read_root_home": lambda o: o == "error ENOENT",
    "read_etc_shadow": lambda o: o == "error ENOENT",
    "read_other_home_host_path": lambda o: o == "error ENOENT",
    "read_other_home_mount": lambda o: o == "error ENOENT",
    "read_home_root": lambda o: o == "error ENOENT",
    "read_data_dir": lambda o: o == "error ENOENT",
    "read_repository": lambda o: o == "error ENOENT",
    "read_sandbox_state": lambda o: o == "error ENOENT",
    "read_sys": lambda o: o == "error ENOENT",
    "read_host_var": lambda o: o == "error ENOENT",
    "read_host_run": lambda o: o == "error ENOENT",
    "write_runtime": lambda o: o == "error EROFS",
    "write_usr": lambda o: o == "error EROFS",
    "write_etc_passwd": lambda o: o == "error EROFS",
    "write_own_home": lambda o: o == "written",
    "write_tmp": lambda o: o == "written",
    "groups": lambda o: o == "[]",
    "cap_eff": lambda o: int(o, 16) == 0,
    "cap_bnd": lambda o: int(o, 16) == 0,
    "no_new_privs": lambda o: o == "1",
    "setuid_binary": failed_command,
    # Its own pid namespace: bwrap's init, the probe and the tools it runs; not even the server.
    "visible_processes": lambda o: "bwrap" in o and set(o.split()) <= PROBE_PROCESSES,
}


@pytest.mark.parametrize("probe", sorted(EXPECTED))
def test_escape_probe(probe: str, probe_report: dict[str, str]) -> None:
    outcome = probe_report[probe]
    assert EXPECTED[probe](outcome), f"{probe}: {outcome}"


def test_every_probe_has_an_expectation(probe_report: dict[str, str]) -> None:
    assert set(probe_report) - {"uid"} == set(EXPECTED)


def test_probe_runs_as_the_users_own_uid(probe_report: dict[str, str], sessions: Sessions) -> None:
    assert sessions.alice.session is not None
    uid = sessions.alice.session.spec.uid
    assert probe_report["uid"] == str(uid)
    assert UID_RANGE[0] <= uid <= UID_RANGE[1]


def test_nothing_reached_the_test_host_or_the_forbidden_listener(
    probe_report: dict[str, str], test_host: RecordingHost, loopback_services: LoopbackServices
) -> None:
    assert test_host.hits_from("10.200.0.0/16") == []
    assert test_host.hits_from("10.201.0.0/30")  # the control connection from the host did arrive
    assert not [hit for hit in loopback_services.forbidden_hits if hit.startswith("10.200.")]


def test_the_session_firewall_dropped_the_probes(probe_report: dict[str, str], sessions: Sessions) -> None:
    assert sessions.alice.session is not None
    table = sessions.alice.session.name
    listing = json.loads(
        subprocess.run(
            ["nft", "-j", "list", "table", "inet", table], capture_output=True, check=True, text=True
        ).stdout
    )
    drops: dict[str, int] = {}
    for item in listing["nftables"]:
        rule = item.get("rule")
        if rule and any("drop" in expr for expr in rule["expr"]):
            counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
            drops[rule["chain"]] = drops.get(rule["chain"], 0) + counter["packets"]
    assert drops["input"] > 0
    assert drops["forward"] > 0


def test_allowed_ports_saw_the_session(
    probe_report: dict[str, str], loopback_services: LoopbackServices
) -> None:
    assert any("from 10.200." in hit for hit in loopback_services.api_hits)
    # The single-user server itself checked in with the hub through the hub port.
    assert any(hit.startswith("GET /hub/api") and "from 10.200." in hit for hit in loopback_services.hub_hits)


def test_servers_answer_at_their_session_address(sessions: Sessions) -> None:
    for spawner in (sessions.alice, sessions.bob):
        assert spawner.ip.startswith("10.200.")
        assert httpx.get(server_url(spawner), timeout=5).status_code == 200


@pytest.mark.parametrize(
    "path", ["files/secret.txt", "nbconvert/html/x.ipynb", "api/nbconvert", "view/x.html"]
)
def test_lockdown_blocks_download_and_export(sessions: Sessions, path: str) -> None:
    # Bob's ~/.jupyter tries to switch the lock-down off: it is not read.
    for spawner in (sessions.alice, sessions.bob):
        response = httpx.get(server_url(spawner, path), timeout=5)
        assert response.status_code == 403, (spawner.user.name, response.status_code)
        assert "egress airlock" in response.text


def test_homes_are_private(sessions: Sessions, home_root: Path) -> None:
    assert (home_root.stat().st_mode & 0o777) == 0o711
    for spawner in (sessions.alice, sessions.bob):
        assert spawner.session is not None
        info = spawner.session.spec.home.stat()
        assert (info.st_mode & 0o777) == 0o700
        assert info.st_uid == spawner.session.spec.uid
    assert sessions.alice.session is not None and sessions.bob.session is not None
    assert sessions.alice.session.spec.uid != sessions.bob.session.spec.uid


def test_two_sessions_ready_quickly(sessions: Sessions) -> None:
    # Generous: a shared 2-core CI machine; the benchmark reports the real figures.
    assert sessions.ready_seconds["both"] < 30, sessions.ready_seconds


def test_server_environment_points_at_the_host_end_and_keeps_the_hub_env_out(
    sessions: Sessions, loopback_services: LoopbackServices
) -> None:
    session = sessions.alice.session
    assert session is not None
    server = next(
        pid
        for pid in session.processes()
        if Path(f"/proc/{pid}/comm").read_text().startswith("jupyterhub-sing")
    )
    raw = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    host = str(session.slot.host_ip)
    assert env["ENCLAVE_API_URL"] == f"http://{host}:{loopback_services.api_port}"
    assert env["JUPYTERHUB_API_URL"] == f"http://{host}:{loopback_services.hub_port}/hub/api"
    assert env["JUPYTERHUB_ACTIVITY_URL"].startswith(f"http://{host}:{loopback_services.hub_port}/")
    assert env["HOME"] == "/home/alice"
    assert env["JUPYTERHUB_DISABLE_USER_CONFIG"] == "1"
    own = set(session.base_env())  # HOME, PATH, SHELL... set by the sandbox itself
    leaked = {key for key, value in os.environ.items() if env.get(key) == value and key not in own}
    assert not leaked, leaked


def test_runtime_has_the_analysis_stack_and_the_enclave_client(sessions: Sessions) -> None:
    session = sessions.alice.session
    assert session is not None
    stack = "pandas, polars, pyarrow, sklearn, matplotlib, lifelines, statsmodels, httpx, enclave_api.client"
    result = session.run([str(RUNTIME / "bin" / "python"), "-c", f"import {stack}; print('ok')"], timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def test_network_clients_are_masked_in_the_terminal(sessions: Sessions) -> None:
    """curl, wget, ssh & co. cannot even start inside a session (the firewall is the real barrier)."""
    session = sessions.alice.session
    assert session is not None
    present = [f"/usr/bin/{name}" for name in sandbox.NETWORK_TOOLS if Path("/usr/bin", name).exists()]
    assert "/usr/bin/curl" in present  # the host has them: the mask is what is tested
    script = "for t in " + " ".join(present) + '; do "$t" --version >/dev/null 2>&1; echo "$t $?"; done'
    result = session.run(["/bin/sh", "-c", script], timeout=60)
    outcomes = dict(line.rsplit(" ", 1) for line in result.stdout.strip().splitlines())
    assert set(outcomes) == set(present)
    assert all(code == "126" for code in outcomes.values()), outcomes  # 126: found but not executable

"""Escape probes, run *inside* a sandboxed session: ``python -c <this source> '<targets as JSON>'``.

Standard library only (the session runtime's Python 3.11). Every probe tries one way out and reports
what happened as a short string; the tests decide what counts as blocked. Network probes run in
parallel with short timeouts, so a dropped packet costs about one timeout in total.
"""

from __future__ import annotations

import concurrent.futures
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

TIMEOUT = 1.5


def tcp(host: str, port: int) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect((host, port))
            return "connected"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def http_get(host: str, port: int) -> str:
    """Status line of ``GET /`` (or what went wrong)."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            return sock.recv(200).split(b"\r\n", 1)[0].decode()
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def dns_query(host: str, port: int = 53) -> str:
    """Send a DNS query for pypi.org over UDP and wait for any answer."""
    query = bytes.fromhex("abcd01000001000000000000") + b"\x04pypi\x03org\x00" + b"\x00\x01\x00\x01"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.sendto(query, (host, port))
            sock.recv(512)
            return "answered"
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def unix_connect(address: str) -> str:
    """Connect to a Unix socket; a leading "@" means the abstract namespace (scoped by netns)."""
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(target)
            return "connected"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def udp_send(host: str, port: int) -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"enclave-probe", (host, port))
            return "sent"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def resolve(name: str) -> str:
    try:
        return f"resolved {socket.getaddrinfo(name, 443)[0][4][0]}"
    except OSError as exc:
        return f"error {exc}"


def open_socket(family: int, kind: int, proto: int) -> str:
    try:
        socket.socket(family, kind, proto).close()
        return "opened"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def read(path: str) -> str:
    try:
        if os.path.isdir(path):
            return f"listed {sorted(os.listdir(path))[:5]}"
        with open(path, "rb") as handle:
            return f"read {len(handle.read(100))} bytes"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def write(path: str) -> str:
    try:
        with open(path, "w") as handle:
            handle.write("probe")
        os.unlink(path)
        return "written"
    except OSError as exc:
        return f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"


def command(name: str, *args: str) -> str:
    """Run a system tool by absolute path (the session's PATH need not hold the sbin directories)."""
    argv = [shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") or name, *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"error {exc}"
    return f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[:120]}"


def status_field(name: str) -> str:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return "missing"


def visible_processes() -> str:
    """Names of the processes this sandbox can see (its own pid namespace only)."""
    names = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as handle:
                    names.add(handle.read().strip())
            except OSError:
                continue
    return " ".join(sorted(names))


def ipv6_addresses() -> str:
    try:
        with open("/proc/net/if_inet6") as handle:
            return handle.read().strip() or "none"
    except OSError:
        return "none"


def probes(t: dict[str, Any]) -> dict[str, Callable[[], str]]:
    host, lan, other = t["host_ip"], t["host_lan_ip"], t["test_host_ip"]
    return {
        # allowed: the two DNAT'ed ports on the host end
        "allowed_api": lambda: http_get(host, t["api_port"]),
        "allowed_hub": lambda: http_get(host, t["hub_port"]),
        # TCP and UDP elsewhere
        "tcp_loopback_listener": lambda: tcp("127.0.0.1", t["forbidden_port"]),
        "tcp_loopback_api_port": lambda: tcp("127.0.0.1", t["api_port"]),
        "tcp_host_end_other_port": lambda: tcp(host, t["forbidden_port"]),
        "tcp_host_end_ssh": lambda: tcp(host, 22),
        "tcp_host_lan_address": lambda: tcp(lan, t["forbidden_port"]),
        "tcp_host_lan_api_port": lambda: tcp(lan, t["api_port"]),
        "tcp_other_session_server": lambda: tcp(t["other_session_ip"], t["session_port"]),
        "tcp_other_session_host_end_api": lambda: tcp(t["other_host_ip"], t["api_port"]),
        "tcp_test_host": lambda: tcp(other, t["test_host_tcp_port"]),
        "udp_test_host": lambda: udp_send(other, t["test_host_udp_port"]),
        "udp_host_end_api_port": lambda: udp_send(host, t["api_port"]),
        "dns_test_host": lambda: dns_query(other),
        "dns_host_end": lambda: dns_query(host),
        "dns_host_lan_address": lambda: dns_query(lan),
        "dns_resolver_lookup": lambda: resolve("pypi.org"),
        "ipv6_addresses": ipv6_addresses,
        "tcp_ipv6_loopback": lambda: tcp("::1", t["forbidden_port"]),
        "unix_abstract_host_socket": lambda: unix_connect(t["abstract_socket"]),
        # privileged network operations
        "raw_socket_icmp": lambda: open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "raw_socket_tcp": lambda: open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        "packet_socket": lambda: open_socket(socket.AF_PACKET, socket.SOCK_RAW, 0),
        "ping_socket": lambda: open_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP),
        "ip_route_add": lambda: command("ip", "route", "add", f"{other}/32", "via", host),
        "ip_route_replace_default": lambda: command("ip", "route", "replace", "default", "via", host),
        "ip_addr_add": lambda: command("ip", "addr", "add", "10.200.255.254/32", "dev", "eth0"),
        "ip_link_down": lambda: command("ip", "link", "set", "eth0", "down"),
        "nft_list_ruleset": lambda: command("nft", "list", "ruleset"),
        "nft_add_table": lambda: command("nft", "add", "table", "inet", "escape"),
        "unshare_user_net": lambda: command("unshare", "--user", "--map-root-user", "--net", "true"),
        # filesystem
        "read_root_home": lambda: read("/root"),
        "read_etc_shadow": lambda: read("/etc/shadow"),
        "read_other_home_host_path": lambda: read(t["other_home"]),
        "read_other_home_mount": lambda: read(t["other_home_mount"]),
        "read_home_root": lambda: read(t["home_root"]),
        "read_data_dir": lambda: read(t["data_dir"]),
        "read_repository": lambda: read(t["repository"]),
        "read_sandbox_state": lambda: read(t["state_dir"]),
        "read_sys": lambda: read("/sys/fs/cgroup"),
        "read_host_var": lambda: read("/var/lib"),
        "read_host_run": lambda: read("/run/postgresql"),
        "write_runtime": lambda: write(os.path.join(t["runtime_dir"], "escape")),
        "write_usr": lambda: write("/usr/escape"),
        "write_etc_passwd": lambda: write("/etc/passwd"),
        "write_own_home": lambda: write(os.path.join(t["own_home_mount"], "probe.txt")),
        "write_tmp": lambda: write("/tmp/probe.txt"),  # noqa: S108 - the sandbox's private tmpfs
        # identity
        "uid": lambda: str(os.getuid()),
        "groups": lambda: str(os.getgroups()),
        "cap_eff": lambda: status_field("CapEff"),
        "cap_bnd": lambda: status_field("CapBnd"),
        "no_new_privs": lambda: status_field("NoNewPrivs"),
        "setuid_binary": lambda: command("mount", "-t", "tmpfs", "none", "/mnt"),
        "visible_processes": visible_processes,
    }


def main() -> None:
    targets = json.loads(sys.argv[1])
    table = probes(targets)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(table)) as pool:
        futures = {name: pool.submit(probe) for name, probe in table.items()}
    print(json.dumps({name: future.result() for name, future in futures.items()}))


if __name__ == "__main__":
    main()

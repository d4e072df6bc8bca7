"""Linux primitives of the local notebook sandbox (root only; Debian: iproute2, nftables, bubblewrap).

A *session* is one slot of the address pool. For slot ``N`` of prefix ``encl`` it owns:

* the network namespace ``encl<N>`` with one veth pair: ``encl<N>h`` on the host (``.1`` of the
  slot's /30) and ``eth0`` inside (``.2``); IPv6 is off on both ends (the pool as a whole has an
  ``unreachable`` route on the host, so nothing for a stopped session leaves by the default route);
* the nftables table ``inet encl<N>``: TCP to ``host_ip:{api_port, hub_port}`` is DNAT'ed to
  ``127.0.0.1`` (hence ``route_localnet=1`` on the host end); every other packet that comes in
  through the veth is dropped, whether addressed to the host (input) or routed on (forward);
* cgroups ``<controller>/<parent>/encl<N>`` for memory, pids and cpu (cgroup v1, written directly),
  plus freezer when present, so that a stop can kill a forking tree at once; without cgroups,
  rlimits (``prlimit``) are the fallback;
* the state directory ``<state_dir>/encl<N>/``: ``session.json`` (the claim: who owns the slot) and
  ``etc/`` (passwd, group, hosts, nsswitch.conf shown inside the sandbox).

Its processes run as ``ip netns exec`` → ``setpriv`` (the user's uid, no groups, no new privileges)
→ ``bwrap`` (own user, pid, ipc and uts namespaces, no nested user namespaces, all capabilities
dropped, dies with its parent): read-only ``/usr`` and runtime, the user's own home, private
``/tmp``, ``/proc`` and a minimal ``/dev``; no other host path.

Every external command is an argument list built here from validated values (never a shell string).
A slot is claimed under one lock file shared by every prefix, so hubs and test runs on one machine
never collide; a claim records its owner process, and :func:`cleanup_leftovers` removes every session
whose owner is gone (a crashed or restarted hub) together with whatever it left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

#: Controllers that carry limits; a session is sandboxed with cgroups only if all three are there.
LIMIT_CONTROLLERS = ("memory", "pids", "cpu")
#: Used, when mounted, to stop a forking process tree before killing it.
FREEZER = "freezer"
#: Where Debian keeps the tools (the hub may run with a reduced PATH).
TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: Prefixes end up in interface names (15 bytes at most: prefix + slot + "h").
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,7}")
#: The host end of any session's veth pair, whatever hub (prefix) it belongs to.
SLOT_VETH_RE = re.compile(r"[a-z][a-z0-9]{0,7}?\d+h")
HOME_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
COMMAND_TIMEOUT = 30.0
#: Fresh, private tmpfs mounts inside every sandbox (not the host's /tmp).
PRIVATE_TMPFS = ("/tmp", "/dev/shm")  # noqa: S108
#: Sysctls that switch IPv6 off inside a session's network namespace.
IPV6_OFF = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
#: Files generated per session and mounted over the sandbox's empty ``/etc``.
ETC_FILES = ("passwd", "group", "hosts", "nsswitch.conf")
#: Network clients masked inside sessions (``/dev/null`` bound over them: not executable). The network
#: rules are the barrier; this only takes the obvious exfiltration tools out of the terminal.
NETWORK_TOOLS = (
    "curl", "wget", "ssh", "scp", "sftp", "rsync", "nc", "nc.openbsd", "nc.traditional", "ncat",
    "netcat", "socat", "telnet", "ftp", "tftp", "ping", "dig", "nslookup", "host", "lftp",
)  # fmt: skip


class SandboxError(RuntimeError):
    """A sandbox operation failed; the message says which command and why."""


class SandboxUnavailable(SandboxError):
    """This machine cannot run sandboxed sessions (not root, a tool or kernel feature missing)."""


def tool(name: str) -> str:
    """Absolute path of a system tool, or :class:`SandboxUnavailable` naming what is missing."""
    path = shutil.which(name, path=TOOL_PATH)
    if path is None:
        raise SandboxUnavailable(f"{name} not found (Debian packages: iproute2, nftables, bubblewrap)")
    return path


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run one command (argument list) and return its stdout; :class:`SandboxError` if it fails."""
    try:
        result = subprocess.run(  # noqa: S603 - argument lists built in this module from validated values
            list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{argv[0]}: {exc}") from exc
    if check and result.returncode != 0:
        raise SandboxError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def check_host() -> None:
    """Raise :class:`SandboxUnavailable` unless this process can build sandboxes."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox spawner needs root (network namespaces, nftables, uids)")
    for name in ("ip", "nft", "bwrap", "setpriv"):
        tool(name)
    if not Path("/proc/self/ns/user").exists() or not Path("/proc/self/ns/net").exists():
        raise SandboxUnavailable("the kernel lacks user or network namespaces")


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"sandbox name prefix must match {PREFIX_RE.pattern}: {prefix!r}")
    return prefix


# ---------------------------------------------------------------------------------------------- locks


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created 0600) for the duration of the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (tells a live process from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so count from its closing parenthesis.
    return int(stat.rsplit(")", 1)[1].split()[19])


# ------------------------------------------------------------------------------------ users and homes


def home_dir_name(username: str) -> str:
    """Directory name of a user's home: the name itself when it is tame, else ``_`` + a hash."""
    if HOME_NAME_RE.fullmatch(username):
        return username
    return "_" + hashlib.sha256(username.encode()).hexdigest()[:24]


def ensure_home(home_root: Path, username: str, uid_range: tuple[int, int]) -> tuple[Path, int]:
    """Create (or find) ``username``'s home under ``home_root`` and return it with the user's uid.

    The uid is ``uid_min + sha256(username) mod size``, probing upwards past uids that other homes
    already own; the home records it (its owner), so it stays the same across restarts. The root is
    ``0711`` (no listing), each home ``0700`` owned by ``uid:uid``.
    """
    uid_min, uid_max = uid_range
    if not 0 < uid_min <= uid_max:
        raise ValueError(f"bad uid range {uid_range}")
    home_root.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(home_root, 0o711)  # noqa: S103 - traversable (not listable): bwrap binds a home as its uid
    home = home_root / home_dir_name(username)
    with locked(home_root / ".lock"):
        if home.exists() or home.is_symlink():
            info = home.lstat()
            if not home.is_dir() or home.is_symlink():
                raise SandboxError(f"{home} is not a directory")
            if not uid_min <= info.st_uid <= uid_max:
                raise SandboxError(f"{home} belongs to uid {info.st_uid}, outside {uid_min}-{uid_max}")
            os.chmod(home, 0o700)
            return home, info.st_uid
        taken = {entry.lstat().st_uid for entry in home_root.iterdir() if entry.name != ".lock"}
        size = uid_max - uid_min + 1
        start = int.from_bytes(hashlib.sha256(username.encode()).digest()[:8], "big") % size
        for step in range(size):
            uid = uid_min + (start + step) % size
            if uid not in taken:
                break
        else:
            raise SandboxError(f"no free uid left in {uid_min}-{uid_max}")
        home.mkdir(mode=0o700)
        os.chown(home, uid, uid)
        return home, uid


# ------------------------------------------------------------------------------------------- slots


@dataclass(frozen=True)
class Slot:
    """Slot ``index`` of an address pool: names and the /30 of one session."""

    prefix: str
    index: int
    pool: IPv4Network

    @property
    def name(self) -> str:
        """Name of the netns, the nftables table, the cgroups and the state directory."""
        return f"{self.prefix}{self.index}"

    @property
    def host_veth(self) -> str:
        return f"{self.name}h"

    @property
    def subnet(self) -> IPv4Network:
        return IPv4Network((int(self.pool.network_address) + 4 * self.index, 30))

    @property
    def host_ip(self) -> IPv4Address:
        """The host end: the session reaches the API and the hub here (and nothing else)."""
        return self.subnet.network_address + 1

    @property
    def session_ip(self) -> IPv4Address:
        """The session end, where its server listens."""
        return self.subnet.network_address + 2

    @staticmethod
    def capacity(pool: IPv4Network) -> int:
        return pool.num_addresses // 4


def slot_index(prefix: str, name: str, suffix: str = "") -> int | None:
    """The slot index encoded in ``name`` (``<prefix><index><suffix>``), or None if not ours."""
    match = re.fullmatch(re.escape(prefix) + r"(\d+)" + re.escape(suffix), name)
    return int(match.group(1)) if match else None


# ------------------------------------------------------------------------------------------ network


def nft_ruleset(slot: Slot, allowed_ports: Sequence[int]) -> str:
    """The session's nftables table: DNAT of the allowed ports to loopback, drop everything else."""
    ports = ", ".join(str(port) for port in sorted(set(allowed_ports)))
    veth, host = slot.host_veth, slot.host_ip
    return f"""table inet {slot.name} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "{veth}" ip daddr {host} tcp dport {{ {ports} }} dnat ip to 127.0.0.1
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname "{veth}" ct state established,related accept
        iifname "{veth}" ct state new ct status dnat ip daddr 127.0.0.1 tcp dport {{ {ports} }} accept
        iifname "{veth}" counter drop
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname "{veth}" counter drop
        oifname "{veth}" counter drop
    }}
}}
"""


def create_network(slot: Slot, allowed_ports: Sequence[int]) -> None:
    """Create the slot's netns, veth pair, addresses, default route and nftables table."""
    ip, ns, veth = tool("ip"), slot.name, slot.host_veth
    # The pool is unreachable from the host except through live sessions' own /30 routes, so a
    # connection to a stopped session fails at once instead of leaving by the default route.
    # "add", never "replace": a route the host already has for that prefix is left alone.
    run([ip, "route", "add", "unreachable", str(slot.pool)], check=False)
    run([ip, "netns", "add", ns])
    # IPv6 off before the peer arrives, so eth0 never gets a link-local address to the host.
    run([ip, "netns", "exec", ns, tool("sysctl"), "-q", "-w", *IPV6_OFF])
    run([ip, "link", "add", veth, "type", "veth", "peer", "name", f"{ns}s", "netns", ns])
    ipv6 = Path("/proc/sys/net/ipv6/conf", veth, "disable_ipv6")
    if ipv6.exists():
        ipv6.write_text("1")
    Path("/proc/sys/net/ipv4/conf", veth, "route_localnet").write_text("1")
    # Rules first, link up last: no packet crosses the veth before the table exists.
    run([tool("nft"), "-f", "-"], stdin=nft_ruleset(slot, allowed_ports))
    run([ip, "addr", "add", f"{slot.host_ip}/30", "dev", veth])
    run([ip, "-n", ns, "link", "set", f"{ns}s", "name", "eth0"])
    run([ip, "-n", ns, "addr", "add", f"{slot.session_ip}/30", "dev", "eth0"])
    run([ip, "-n", ns, "link", "set", "lo", "up"])
    run([ip, "-n", ns, "link", "set", "eth0", "up"])
    run([ip, "link", "set", veth, "up"])
    # A default route so that every stray packet meets the nftables drop rather than "unreachable".
    run([ip, "-n", ns, "route", "add", "default", "via", str(slot.host_ip)])


def delete_network(slot: Slot) -> None:
    """Remove the slot's nftables table, veth pair and netns; missing parts are skipped."""
    run([tool("nft"), "delete", "table", "inet", slot.name], check=False)
    run([tool("ip"), "link", "del", slot.host_veth], check=False)
    run([tool("ip"), "netns", "del", slot.name], check=False)


def netns_pids(name: str) -> set[int]:
    """Processes inside the named network namespace (empty if it does not exist)."""
    if not Path("/run/netns", name).exists():
        return set()
    out = run([tool("ip"), "netns", "pids", name], check=False)
    return {int(pid) for pid in out.split()}


def host_addresses() -> dict[IPv4Address, str]:
    """IPv4 addresses configured on host interfaces, with the interface of each."""
    links = json.loads(run([tool("ip"), "-j", "-4", "addr", "show"]) or "[]")
    return {
        IPv4Address(a["local"]): link["ifname"]
        for link in links
        for a in link.get("addr_info", [])
        if "local" in a
    }


# ------------------------------------------------------------------------------------------ cgroups


@dataclass(frozen=True)
class Limits:
    """Resource limits of one session; None means unlimited."""

    memory_bytes: int | None = None
    pids: int | None = None
    cpu: float | None = None  # cores

    def rlimit_args(self) -> list[str]:
        """``prlimit`` options approximating the limits without cgroups (per uid / address space)."""
        args = []
        if self.pids:
            args.append(f"--nproc={self.pids}")
        if self.memory_bytes:
            args.append(f"--as={self.memory_bytes}")
        return args


def cgroups_available(root: Path) -> bool:
    """True when the cgroup v1 memory, pids and cpu hierarchies are mounted and writable here."""
    return all(
        (root / c / "cgroup.procs").exists() and os.access(root / c, os.W_OK) for c in LIMIT_CONTROLLERS
    )


@dataclass(frozen=True)
class Cgroup:
    """One session's cgroup in every v1 hierarchy it uses (``<root>/<controller>/<parent>/<name>``)."""

    root: Path
    parent: str
    name: str

    @property
    def controllers(self) -> tuple[str, ...]:
        freezer = (FREEZER,) if (self.root / FREEZER / "cgroup.procs").exists() else ()
        return LIMIT_CONTROLLERS + freezer

    def path(self, controller: str) -> Path:
        return self.root / controller / self.parent / self.name

    def create(self, limits: Limits) -> None:
        """Create the cgroups and write the limits (memory without swap, pids, CFS quota)."""
        for controller in self.controllers:
            self.path(controller).mkdir(parents=True, exist_ok=True)
        memory = self.path("memory")
        if limits.memory_bytes:
            (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # only with swap accounting; then swap counts against the same limit
                memsw.write_text(str(limits.memory_bytes))
        if limits.pids:
            (self.path("pids") / "pids.max").write_text(str(limits.pids))
        if limits.cpu:
            period = 100_000
            (self.path("cpu") / "cpu.cfs_period_us").write_text(str(period))
            (self.path("cpu") / "cpu.cfs_quota_us").write_text(str(max(1000, int(limits.cpu * period))))

    def procs_files(self) -> tuple[str, ...]:
        return tuple(str(self.path(c) / "cgroup.procs") for c in self.controllers)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for controller in self.controllers:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (self.path(controller) / "cgroup.procs").read_text().split())
        return found

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the cgroup, freezing it first so a fork bomb cannot outrun us."""
        freezer = self.path(FREEZER) / "freezer.state" if FREEZER in self.controllers else None
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            if freezer is not None and freezer.exists():
                freezer.write_text("FROZEN")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if freezer is not None and freezer.exists():
                freezer.write_text("THAWED")
            time.sleep(0.02)

    def remove(self) -> None:
        """Remove the cgroups (they must be empty); missing ones are skipped."""
        for controller in self.controllers:
            path = self.path(controller)
            for _ in range(50):  # the kernel drops exited tasks from a cgroup asynchronously
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def join_cgroups(procs_files: Sequence[str]) -> Callable[[], None]:
    """A ``preexec_fn`` that moves the child into the cgroups before it execs anything.

    Only raw system calls run between fork and exec; if one fails the spawn fails.
    """
    files = tuple(procs_files)

    def join() -> None:
        pid = str(os.getpid()).encode()
        for path in files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    return join


# ------------------------------------------------------------------------------------------ session


@dataclass(frozen=True)
class SandboxSpec:
    """What a session runs as, sees and may use."""

    username: str
    uid: int
    home: Path
    runtime_dir: Path
    allowed_ports: tuple[int, ...]
    limits: Limits = field(default_factory=Limits)
    use_cgroups: bool = True

    @property
    def home_mount(self) -> str:
        """The home's path inside the sandbox."""
        return f"/home/{home_dir_name(self.username)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "uid": self.uid,
            "home": str(self.home),
            "runtime_dir": str(self.runtime_dir),
            "allowed_ports": list(self.allowed_ports),
            "limits": {
                "memory_bytes": self.limits.memory_bytes,
                "pids": self.limits.pids,
                "cpu": self.limits.cpu,
            },
            "use_cgroups": self.use_cgroups,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SandboxSpec:
        return cls(
            username=str(data["username"]),
            uid=int(data["uid"]),
            home=Path(data["home"]),
            runtime_dir=Path(data["runtime_dir"]),
            allowed_ports=tuple(int(p) for p in data["allowed_ports"]),
            limits=Limits(**data["limits"]),
            use_cgroups=bool(data["use_cgroups"]),
        )


@dataclass(frozen=True)
class Places:
    """Where sessions of one prefix keep their state and cgroups."""

    prefix: str = "encl"
    state_dir: Path = Path("/run/enclave-sandbox")
    cgroup_root: Path = Path("/sys/fs/cgroup")
    cgroup_parent: str = "enclave"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def cgroup(self, name: str) -> Cgroup:
        return Cgroup(self.cgroup_root, self.cgroup_parent, name)


class Session:
    """One sandboxed session: create it, run commands in it, tear it down.

    ``Session.create`` claims a slot and builds the network, cgroups and ``/etc`` files;
    :meth:`popen` / :meth:`run` start processes in it (all sharing its netns, uid, home and cgroups);
    :meth:`teardown` stops them and removes everything. ``Session.load`` finds a session again from
    its claim (after a hub restart).
    """

    def __init__(self, slot: Slot, session_id: str, spec: SandboxSpec, places: Places) -> None:
        self.slot = slot
        self.session_id = session_id
        self.spec = spec
        self.places = places

    # -- lifecycle

    @classmethod
    def create(cls, spec: SandboxSpec, places: Places, pool: IPv4Network) -> Session:
        """Claim a free slot and build the session; on any failure nothing is left behind."""
        session = cls._claim(spec, places, pool)
        try:
            session._write_etc()
            if spec.use_cgroups:
                session.cgroup.create(spec.limits)
            create_network(session.slot, spec.allowed_ports)
        except BaseException:
            session.teardown()
            raise
        return session

    @classmethod
    def _claim(cls, spec: SandboxSpec, places: Places, pool: IPv4Network) -> Session:
        state_dir = places.state_dir
        state_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(state_dir, 0o711)  # noqa: S103 - bwrap reads the generated /etc files as the user
        with locked(state_dir / ".lock"):
            taken = {IPv4Network(c["subnet"]) for c in _read_claims(state_dir)}
            for address, ifname in host_addresses().items():
                if address in pool:
                    if not SLOT_VETH_RE.fullmatch(ifname):
                        raise SandboxError(f"address pool {pool} overlaps the host's {address} ({ifname})")
                    taken.add(IPv4Network((address, 30), strict=False))
            ours = set(leftover_resources(places))
            for index in range(Slot.capacity(pool)):
                slot = Slot(places.prefix, index, pool)
                if slot.subnet in taken or index in ours:
                    continue
                session = cls(slot, uuid.uuid4().hex, spec, places)
                session.state_path.mkdir(mode=0o711)
                me = os.getpid()
                claim = {
                    "prefix": places.prefix,
                    "index": index,
                    "subnet": str(slot.subnet),
                    "pool": str(pool),
                    "session_id": session.session_id,
                    "spec": spec.to_json(),
                    "owner_pid": me,
                    "owner_start": process_start_time(me),
                    "created": time.time(),
                }
                claim_file = session.state_path / "session.json"
                claim_file.write_text(json.dumps(claim))
                claim_file.chmod(0o600)
                return session
        raise SandboxError(f"address pool {pool} exhausted")

    @classmethod
    def load(cls, places: Places, name: str) -> Session | None:
        """The session claimed under ``name``, or None when there is no (readable) claim."""
        claim = _read_claim(places.state_dir / name)
        if claim is None or claim.get("prefix") != places.prefix:
            return None
        slot = Slot(places.prefix, int(claim["index"]), IPv4Network(claim["pool"]))
        return cls(slot, str(claim["session_id"]), SandboxSpec.from_json(claim["spec"]), places)

    def teardown(self, grace: float = 0.0) -> None:
        """Stop every process of the session and remove netns, veth, table, cgroups and state.

        With ``grace`` > 0 the processes (but bubblewrap itself) first get SIGTERM and that many
        seconds to exit, so that a server can shut its kernels down; then everything left is killed.
        """
        if grace > 0:
            self.terminate(grace)
        self.kill()
        delete_network(self.slot)
        self.cgroup.remove()
        shutil.rmtree(self.state_path, ignore_errors=True)

    # -- state

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def state_path(self) -> Path:
        return self.places.state_dir / self.slot.name

    @property
    def cgroup(self) -> Cgroup:
        return self.places.cgroup(self.slot.name)

    def processes(self) -> set[int]:
        """Pids of every process of the session (its cgroups and its network namespace)."""
        return self.cgroup.pids() | netns_pids(self.slot.name)

    def live_processes(self) -> set[int]:
        """:meth:`processes` without zombies: a dead sandbox whose processes were reparented to an
        init that does not reap (some container hosts) still counts as stopped."""
        return {pid for pid in self.processes() if process_running(pid)}

    def terminate(self, grace: float) -> None:
        """SIGTERM every process but bubblewrap (which would just die) and wait up to ``grace`` s."""
        bwrap = os.path.realpath(tool("bwrap"))
        for pid in self.processes():
            with contextlib.suppress(OSError):
                if os.path.realpath(f"/proc/{pid}/exe") != bwrap:
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL all processes of the session and wait until none of them runs any more.

        The sandbox's pid-1 (bubblewrap) may outlive its parent as a zombie for the host's init to
        reap; a zombie holds no resources and runs nothing, so it is not waited for.
        """
        seen = self.processes()
        if self.spec.use_cgroups:
            self.cgroup.kill(timeout)
        deadline = time.monotonic() + timeout
        while (pids := self.processes()) and time.monotonic() < deadline:
            seen |= pids
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        while any(process_running(pid) for pid in seen) and time.monotonic() < deadline:
            time.sleep(0.02)

    # -- processes

    def command(self, argv: Sequence[str]) -> list[str]:
        """The full command line that runs ``argv`` inside this session's sandbox."""
        spec, slot = self.spec, self.slot
        uid = str(spec.uid)
        outer = [tool("ip"), "netns", "exec", slot.name]
        if not spec.use_cgroups and spec.limits.rlimit_args():
            outer += [tool("prlimit"), *spec.limits.rlimit_args(), "--"]
        outer += [
            tool("setpriv"),
            "--reuid",
            uid,
            "--regid",
            uid,
            "--clear-groups",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ]
        return [*outer, tool("bwrap"), *self.bwrap_args(), "--", *argv]

    def bwrap_args(self) -> list[str]:
        """bubblewrap options: namespaces, capabilities and the filesystem view."""
        spec = self.spec
        runtime = str(spec.runtime_dir)
        args = [
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "enclave",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/", top)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{top}"]
            elif path.is_dir():
                args += ["--ro-bind", str(path), f"/{top}"]
        for name in NETWORK_TOOLS:
            for directory in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
                if Path(directory, name).exists():
                    args += ["--ro-bind", "/dev/null", f"{directory}/{name}"]
        if not runtime.startswith("/usr/"):
            args += ["--ro-bind", runtime, runtime]
        args += ["--dir", "/etc"]
        for host_file in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/mime.types"):
            args += ["--ro-bind-try", host_file, host_file]
        for name in ETC_FILES:
            args += ["--ro-bind", str(self.state_path / "etc" / name), f"/etc/{name}"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        for mount in PRIVATE_TMPFS:
            if spec.limits.memory_bytes:  # tmpfs pages count against the memory cgroup anyway
                args += ["--size", str(spec.limits.memory_bytes)]
            args += ["--tmpfs", mount]
        args += ["--dir", "/home", "--bind", str(spec.home), spec.home_mount, "--chdir", spec.home_mount]
        return args

    def base_env(self) -> dict[str, str]:
        """Environment every process in the session gets (callers add their own on top)."""
        return {
            "HOME": self.spec.home_mount,
            "USER": home_dir_name(self.spec.username),
            "PATH": f"{self.spec.runtime_dir}/bin:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "TMPDIR": PRIVATE_TMPFS[0],
        }

    def popen(self, argv: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
        """Start ``argv`` in the sandbox (``subprocess.Popen``); the child joins the session's cgroups.

        Call it from the thread that should own the sandbox: bubblewrap dies with its parent thread.
        """
        preexec = join_cgroups(self.cgroup.procs_files()) if self.spec.use_cgroups else None
        return subprocess.Popen(  # noqa: S603 - argument list built by command()
            self.command(argv),
            env={**self.base_env(), **(env or {})},
            preexec_fn=preexec,  # only raw system calls between fork and exec, see join_cgroups
            start_new_session=True,
            **kwargs,
        )

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion in the sandbox and capture its output (probes, admin tasks)."""
        proc = self.popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def _write_etc(self) -> None:
        etc = self.state_path / "etc"
        etc.mkdir(mode=0o755)
        spec, name = self.spec, home_dir_name(self.spec.username)
        contents = {
            "passwd": (
                "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                f"{name}:x:{spec.uid}:{spec.uid}:{name}:{spec.home_mount}:/bin/bash\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
            "group": f"root:x:0:\n{name}:x:{spec.uid}:\nnogroup:x:65534:\n",
            "hosts": (
                f"127.0.0.1 localhost\n{self.slot.host_ip} enclave-api enclave-hub\n"
                f"{self.slot.session_ip} enclave\n"
            ),
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        }
        for file_name, text in contents.items():
            path = etc / file_name
            path.write_text(text)
            path.chmod(0o644)


# ---------------------------------------------------------------------------------------- leftovers


def _read_claim(path: Path) -> dict[str, Any] | None:
    try:
        claim = json.loads((path / "session.json").read_text())
    except (OSError, ValueError):
        return None
    return claim if isinstance(claim, dict) else None


def _read_claims(state_dir: Path) -> list[dict[str, Any]]:
    if not state_dir.is_dir():
        return []
    return [c for entry in state_dir.iterdir() if entry.is_dir() and (c := _read_claim(entry))]


def leftover_resources(places: Places) -> dict[int, list[str]]:
    """Every resource of ``places.prefix`` on this machine, by slot index: ``["netns encl3", ...]``."""
    found: dict[int, list[str]] = {}
    prefix = places.prefix

    def add(index: int | None, what: str) -> None:
        if index is not None:
            found.setdefault(index, []).append(what)

    for ns in json.loads(run([tool("ip"), "-j", "netns", "list"]) or "[]"):
        add(slot_index(prefix, ns["name"]), f"netns {ns['name']}")
    for link in json.loads(run([tool("ip"), "-j", "link", "show"]) or "[]"):
        add(slot_index(prefix, link["ifname"], "h"), f"veth {link['ifname']}")
    for item in json.loads(run([tool("nft"), "-j", "list", "tables"]) or "{}").get("nftables", []):
        table = item.get("table")
        if table and table.get("family") == "inet":
            add(slot_index(prefix, table["name"]), f"nft table inet {table['name']}")
    for controller in (*LIMIT_CONTROLLERS, FREEZER):
        parent = places.cgroup_root / controller / places.cgroup_parent
        if parent.is_dir():
            for entry in parent.iterdir():
                if entry.is_dir():
                    add(
                        slot_index(prefix, entry.name),
                        f"cgroup {controller}/{places.cgroup_parent}/{entry.name}",
                    )
    if places.state_dir.is_dir():
        for entry in places.state_dir.iterdir():
            add(slot_index(prefix, entry.name), f"state {entry}")
    return found


def owner_alive(claim: Mapping[str, Any]) -> bool:
    """True when the process that claimed a session (the hub) still runs."""
    pid, start = claim.get("owner_pid"), claim.get("owner_start")
    return isinstance(pid, int) and start is not None and process_start_time(pid) == start


def cleanup_leftovers(places: Places, *, everything: bool = False) -> list[str]:
    """Tear down every session of ``places.prefix`` whose owning process is gone; return what went.

    Call it when a hub starts: sessions die with the hub that started them (``--die-with-parent``),
    but their network namespace, veth, nftables table, cgroups and state stay until removed here.
    Sessions of a live owner (another hub with the same prefix, a spawn in progress) are kept, unless
    ``everything`` (for when no hub of this prefix can be running).
    """
    removed: list[str] = []
    with locked(places.state_dir / ".lock"):
        for index, resources in sorted(leftover_resources(places).items()):
            name = f"{places.prefix}{index}"
            claim = _read_claim(places.state_dir / name)
            if not everything and claim is not None and owner_alive(claim):
                continue
            session = Session.load(places, name)
            if session is None:  # no claim: rebuild enough of a session to remove what is there
                slot = Slot(places.prefix, index, IPv4Network("0.0.0.0/0"))
                spec = SandboxSpec("", 0, Path("/nonexistent"), Path("/nonexistent"), ())
                session = Session(slot, "", spec, places)
            session.teardown()
            removed.extend(resources)
    return removed

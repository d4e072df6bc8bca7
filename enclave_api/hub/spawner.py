"""JupyterHub spawner that runs each single-user server in a local sandbox (embedded deployment).

Configure it in ``jupyterhub_config.py``::

    from enclave_api.hub.spawner import SandboxSpawner

    c.JupyterHub.spawner_class = SandboxSpawner
    c.SandboxSpawner.api_port = 8400          # the enclave API on 127.0.0.1
    c.SandboxSpawner.mem_limit = "2G"
    SandboxSpawner.cleanup_leftovers(c)       # before the hub starts: sessions of a previous hub

Each server gets its own network namespace, whose only peers are the enclave API and the hub's API
(both on ``127.0.0.1``, reached through the session's host address), an unprivileged uid derived from
the user name, its own home, the read-only session runtime (``scripts/build-runtime.sh``) and cgroup
limits. See :mod:`enclave_api.hub.sandbox` for what exactly is built. The hub must run as root.

With ``enclave_sessions`` on (the default), a server starts only for a researcher the enclave lets
open a notebook session (an active grant): the spawn page lists the grants the session will carry, and
the session's own credential (bound to its address, revoked when the server stops or a grant ends)
is handed to the sandbox as ``ENCLAVE_API_TOKEN``, with the welcome notebook in a new home.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import subprocess
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from jupyterhub.spawner import Spawner
from traitlets import Bool, CaselessStrEnum, Instance, Integer, TraitError, Unicode, default, validate
from traitlets.config import Config

from enclave_api.hub import sandbox
from enclave_api.hub.enclave import EnclaveHubClient, EnclaveRefused
from enclave_api.hub.sandbox import Limits, Places, SandboxSpec, Session
from enclave_api.hub.welcome import install_welcome


class SandboxSpawner(Spawner):  # type: ignore[misc]  # jupyterhub ships no type information
    """Spawn ``jupyterhub-singleuser`` inside a per-session sandbox (netns + nftables + bwrap + cgroups).

    ``start`` returns the session's own address; ``poll`` follows the sandboxed process; ``stop``
    stops the server (SIGTERM, then SIGKILL to the whole session) and removes every resource the
    session had. Sessions do not outlive the hub process (``bwrap --die-with-parent``): after a
    restart JupyterHub finds them stopped, and ``cleanup_leftovers`` (call it from the config)
    removes what they left behind.
    """

    runtime_dir = Unicode(
        "/opt/enclave-runtime",
        help="""Python environment the sessions run (built by scripts/build-runtime.sh).

        Mounted read-only; it must be readable by the sandbox uids (so not under /root) and hold
        jupyterhub-singleuser, JupyterLab, the analysis stack and the enclave client.
        """,
    ).tag(config=True)

    home_root = Unicode(
        "/var/lib/enclave/homes",
        help="""Directory holding one home per user (mode 0711; each home 0700, owned by the user's uid).

        A home is the only writable host path a session sees; it is created on first spawn.
        """,
    ).tag(config=True)

    uid_min = Integer(
        1_900_000_000,
        help="""Lowest uid given to sandboxed users (no passwd entry is needed).

        The default range lies above the ranges that subuid files and systemd-nspawn hand out to
        containers and below 2**31, so no other process on the host runs as a sandbox uid.
        """,
    ).tag(config=True)

    uid_max = Integer(
        1_900_999_999,
        help="""Highest uid given to sandboxed users.

        A user's uid is ``uid_min + sha256(name) mod (uid_max - uid_min + 1)``, moved past uids that
        other homes already own; the home keeps it, so it is stable across restarts.
        """,
    ).tag(config=True)

    pids_limit = Integer(
        1024, help="Most processes and threads one session may have at once (pids cgroup, else RLIMIT_NPROC)."
    ).tag(config=True)

    limits_backend = CaselessStrEnum(
        ["auto", "cgroup", "rlimit"],
        default_value="auto",
        help="""How limits are enforced.

        ``cgroup``: cgroup v1 memory (no swap), pids and cpu (CFS quota) hierarchies, written directly.
        ``rlimit``: per-process RLIMIT_AS and per-uid RLIMIT_NPROC via prlimit; no CPU limit.
        ``auto``: cgroup when the v1 hierarchies are mounted and writable, else rlimit.
        """,
    ).tag(config=True)

    api_port = Integer(
        8400,
        help="""Port of the enclave API on 127.0.0.1, the one service a session may call.

        Sessions reach it as ``http://<host address>:<api_port>`` (``ENCLAVE_API_URL``).
        """,
    ).tag(config=True)

    hub_port = Integer(
        0,
        help="""Port of the hub's API on 127.0.0.1 that sessions may reach (0: the port of the hub's API URL).

        The single-user server talks to the hub through it (token checks, activity).
        """,
    ).tag(config=True)

    session_port = Integer(
        8888, help="Port the single-user server listens on inside its own network namespace."
    ).tag(config=True)

    network_pool = Unicode(
        "10.200.0.0/16",
        help="""IPv4 range cut into one /30 per session: ``.1`` is the host end, ``.2`` the session.

        Must not overlap any network the host uses. 10.200.0.0/16 holds 16384 sessions.
        """,
    ).tag(config=True)

    name_prefix = Unicode(
        "encl",
        help="""Prefix of the names of a session's netns, veth, nftables table, cgroups and state.

        One hub per prefix: ``cleanup_leftovers`` removes sessions of this prefix whose hub is gone.
        """,
    ).tag(config=True)

    state_dir = Unicode(
        "/run/enclave-sandbox", help="Where session claims and generated /etc files are kept (root only)."
    ).tag(config=True)

    cgroup_root = Unicode("/sys/fs/cgroup", help="Mount point of the cgroup v1 hierarchies.").tag(config=True)

    cgroup_parent = Unicode(
        "enclave", help="Cgroup under which each session's cgroup is created, in every hierarchy."
    ).tag(config=True)

    graceful_stop_timeout = Integer(
        5, help="Seconds a stopping server gets after SIGTERM before the whole session is killed."
    ).tag(config=True)

    enclave_sessions = Bool(
        True,
        help="""Open an enclave notebook session for each server (grant check, session credential).

        Off only to test the bare sandbox: a server then starts for anyone and holds no credential.
        """,
    ).tag(config=True)

    welcome_notebook = Bool(
        True, help="Copy the welcome notebook into a user's home when it is not there yet."
    ).tag(config=True)

    enclave = Instance(EnclaveHubClient, help="The enclave API client (configure c.EnclaveHubClient).")

    pid = Integer(0, help="Pid of the sandbox's outermost process (bwrap), 0 when none.")

    @default("enclave")
    def _default_enclave(self) -> EnclaveHubClient:
        return EnclaveHubClient(parent=self)

    @default("options_form")
    def _default_options_form(self) -> Any:
        return grants_form if self.enclave_sessions else ""

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return 2 * 1024**3

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return 1.0

    @default("env_keep")
    def _default_env_keep(self) -> list[str]:
        return []  # nothing from the hub's environment (it holds secrets) reaches a session

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    @default("disable_user_config")
    def _default_disable_user_config(self) -> bool:
        return True  # ~/.jupyter is writable by the user; the lock-down must not be overridable

    @validate("network_pool")
    def _validate_network_pool(self, proposal: dict[str, Any]) -> str:
        try:
            pool = IPv4Network(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"network_pool: {exc}") from exc
        if pool.prefixlen > 30:
            raise TraitError("network_pool must hold at least one /30")
        return str(pool)

    @validate("name_prefix")
    def _validate_name_prefix(self, proposal: dict[str, Any]) -> str:
        try:
            return sandbox.check_prefix(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from exc

    # The live sandbox and its process; after a hub restart only the names from the stored state.
    session: Session | None = None
    proc: subprocess.Popen[bytes] | None = None
    _session_name = ""
    _session_id = ""
    # The enclave's notebook session (its id survives hub restarts in the state; the token never does).
    _enclave_session = ""
    _enclave_token = ""

    # ------------------------------------------------------------------------------------ places

    @property
    def places(self) -> Places:
        return Places(
            prefix=self.name_prefix,
            state_dir=Path(self.state_dir),
            cgroup_root=Path(self.cgroup_root),
            cgroup_parent=self.cgroup_parent,
        )

    def _hub_api_port(self) -> int:
        if self.hub_port:
            return int(self.hub_port)
        api_url = str(self.hub.api_url)
        port = urlparse(api_url).port
        if port is None:
            raise sandbox.SandboxError(f"cannot tell the hub API port from {api_url}")
        return port

    def _resolve_cgroups(self) -> bool:
        available = sandbox.cgroups_available(Path(self.cgroup_root))
        if self.limits_backend == "cgroup" and not available:
            raise sandbox.SandboxUnavailable(
                f"cgroup v1 memory/pids/cpu not writable under {self.cgroup_root}"
            )
        if self.limits_backend == "auto" and not available:
            self.log.warning("cgroups unavailable: limiting %s with rlimits only", self._log_name)
        return self.limits_backend != "rlimit" and available

    # ------------------------------------------------------------------------------------- start

    def sandbox_spec(self, home: Path, uid: int, use_cgroups: bool) -> SandboxSpec:
        """What this user's session may see and use."""
        return SandboxSpec(
            username=self.user.name,
            uid=uid,
            home=home,
            runtime_dir=Path(self.runtime_dir),
            allowed_ports=(int(self.api_port), self._hub_api_port()),
            limits=Limits(
                memory_bytes=int(self.mem_limit) if self.mem_limit else None,
                pids=int(self.pids_limit) or None,
                cpu=float(self.cpu_limit) if self.cpu_limit else None,
            ),
            use_cgroups=use_cgroups,
        )

    def _create_session(self) -> Session:
        sandbox.check_host()
        runtime = Path(self.runtime_dir)
        if not (runtime / "bin" / "python").exists():
            raise sandbox.SandboxUnavailable(
                f"no session runtime at {runtime} (run scripts/build-runtime.sh)"
            )
        home, uid = sandbox.ensure_home(Path(self.home_root), self.user.name, (self.uid_min, self.uid_max))
        spec = self.sandbox_spec(home, uid, self._resolve_cgroups())
        return Session.create(spec, self.places, IPv4Network(self.network_pool))

    def single_user_command(self) -> list[str]:
        """``cmd`` + ``args``; a bare command name is taken from the runtime's ``bin``."""
        cmd = list(self.cmd)
        if cmd and "/" not in cmd[0]:
            cmd[0] = str(Path(self.runtime_dir, "bin", cmd[0]))
        return cmd + list(self.get_args())

    def get_env(self) -> dict[str, str]:
        """The hub's variables with every hub URL pointing at the session's host address."""
        env: dict[str, str] = super().get_env()
        if self.session is None:
            return env
        host = str(self.session.slot.host_ip)
        hub_netloc = f"{host}:{self._hub_api_port()}"
        for key in ("JUPYTERHUB_API_URL", "JUPYTERHUB_ACTIVITY_URL"):
            if key in env:
                env[key] = urlunparse(urlparse(env[key])._replace(netloc=hub_netloc))
        env["ENCLAVE_API_URL"] = f"http://{host}:{self.api_port}"
        if self._enclave_token:
            env["ENCLAVE_API_TOKEN"] = self._enclave_token
            env["ENCLAVE_SESSION_ID"] = self._enclave_session
        env.update({k: v for k, v in self.session.base_env().items() if k not in env})
        return env

    async def check_eligible(self) -> dict[str, Any]:
        """The user's enclave record; refuse at once, with the enclave's own reason, a user who may
        not open a session (the rule lives in the enclave: ``session_refused``)."""
        user = await self.enclave.user(self.user.name)
        if user is None:
            raise EnclaveRefused(403, f"{self.user.name} is not an enclave account")
        if user.get("session_refused"):
            raise EnclaveRefused(403, str(user["session_refused"]))
        return user

    async def _open_enclave_session(self, session: Session) -> None:
        started = await self.enclave.start_session(self.user.name, self.name, str(session.slot.session_ip))
        self._enclave_session, self._enclave_token = str(started["id"]), str(started["token"])
        self.log.info(
            "Enclave session %s for %s (grants %s)", self._enclave_session, self._log_name, started["grants"]
        )
        if self.welcome_notebook:
            spec = session.spec
            await asyncio.to_thread(install_welcome, spec.home, spec.uid, spec.uid)

    async def start(self) -> tuple[str, int]:
        """Build the sandbox and start the server in it; return the session's (ip, port)."""
        if self.internal_ssl:
            raise sandbox.SandboxUnavailable("internal_ssl is not supported by the sandbox spawner")
        if self.enclave_sessions:
            await self.check_eligible()  # before any sandbox exists: the form shows why at once
        session = await asyncio.to_thread(self._create_session)
        self.session = session
        self._session_name, self._session_id = session.name, session.session_id
        self.ip, self.port = str(session.slot.session_ip), int(self.session_port)
        try:
            if self.enclave_sessions:
                await self._open_enclave_session(session)
            env = self.get_env()
            cmd = self.single_user_command()
            self.log.info(
                "Spawning %s in sandbox %s (uid %i)", self._log_name, session.name, session.spec.uid
            )
            # Popen on the event-loop thread: bwrap dies with the thread that started it.
            self.proc = session.popen(cmd, env)
            self.pid = self.proc.pid
            await self._wait_listening()
        except BaseException:
            await asyncio.to_thread(session.teardown)
            await self._end_enclave_session()
            self._forget()
            raise
        return (self.ip, self.port)

    async def _wait_listening(self) -> None:
        """Return once the server accepts connections (checked every 50 ms).

        JupyterHub's own readiness check backs off exponentially (0.2, 0.4, 0.8, 1.6 s ...), which
        would add up to a second and a half to a 2 s start; after this it succeeds at its first try.
        A server that exits meanwhile fails the spawn with its exit status.
        """
        deadline = asyncio.get_running_loop().time() + float(self.start_timeout)
        while asyncio.get_running_loop().time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise sandbox.SandboxError(
                    f"the single-user server exited with status {self.proc.returncode}"
                )
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.ip, self.port), 0.5)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise TimeoutError(f"the single-user server did not listen within {self.start_timeout} s")

    async def progress(self) -> Any:
        yield {"progress": 50, "message": "Starting the sandboxed server..."}

    # -------------------------------------------------------------------------------- poll, stop

    def _loaded_session(self) -> Session | None:
        """The session this spawner owns: the live object, or the one its stored state names."""
        if self.session is not None:
            return self.session
        if not self._session_name:
            return None
        session = Session.load(self.places, self._session_name)
        # A claim under the same name but another id belongs to a newer session: never touch it.
        return session if session is not None and session.session_id == self._session_id else None

    async def poll(self) -> int | None:
        """None while the server runs; its exit status (0 if unknown) once it has stopped."""
        if self.proc is not None:
            return self.proc.poll()
        session = await asyncio.to_thread(self._loaded_session)
        if session is None:
            return 0
        alive = await asyncio.to_thread(session.live_processes)
        if self.pid:
            # The server's own process decides: strays it leaves behind (a killed bwrap's orphans
            # on a loaded machine) are the sandbox's leftovers, which stop() removes.
            return None if self.pid in alive else 0
        return None if alive else 0

    async def stop(self, now: bool = False) -> None:
        """Stop the server and remove the sandbox: processes, netns, veth, nftables table, cgroups.

        Unless ``now``, the server first gets SIGTERM and ``graceful_stop_timeout`` seconds.
        """
        session = await asyncio.to_thread(self._loaded_session)
        if session is not None:
            await asyncio.to_thread(session.teardown, 0.0 if now else float(self.graceful_stop_timeout))
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, 10)
        await self._end_enclave_session()
        self._forget()

    async def _end_enclave_session(self) -> None:
        """Tell the enclave the server is gone; if it cannot be told, the session's credential still
        ends with its grants or its lifetime, and ``enclave up`` ends leftovers at its next start."""
        if not self._enclave_session:
            return
        try:
            await self.enclave.end_session(self._enclave_session)
        except EnclaveRefused as exc:
            self.log.error("Could not end enclave session %s: %s", self._enclave_session, exc)

    def _forget(self) -> None:
        self.session, self.proc = None, None
        self._session_name = self._session_id = ""
        self._enclave_session = self._enclave_token = ""
        self.pid = 0

    # ----------------------------------------------------------------------------------- state

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._session_name:
            state.update(sandbox=self._session_name, session_id=self._session_id, pid=self.pid)
        if self._enclave_session:
            state["enclave_session"] = self._enclave_session
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._session_name = str(state.get("sandbox", ""))
        self._session_id = str(state.get("session_id", ""))
        self.pid = int(state.get("pid", 0))
        self._enclave_session = str(state.get("enclave_session", ""))

    def clear_state(self) -> None:
        super().clear_state()
        self._forget()

    # ------------------------------------------------------------------------------- leftovers

    @classmethod
    def unavailable_reason(cls, config: Config | None = None) -> str | None:
        """Why this machine cannot run sandboxed sessions with this config, or None if it can.

        For ``enclave up``: when there is a reason, start no hub and say it (never an unsandboxed one).
        """
        spawner = cls(config=config or Config())
        try:
            sandbox.check_host()
        except sandbox.SandboxUnavailable as exc:
            return str(exc)
        if not (Path(spawner.runtime_dir) / "bin" / "jupyterhub-singleuser").exists():
            return f"no session runtime at {spawner.runtime_dir} (scripts/build-runtime.sh)"
        return None

    @classmethod
    def cleanup_leftovers(cls, config: Config | None = None) -> list[str]:
        """Remove sessions of this spawner's prefix whose hub is gone; return what was removed.

        Call it once when the hub starts, before any spawn (``jupyterhub_config.py``), with the
        hub's config so that prefix, state dir and cgroup parent are the configured ones. On a host
        that cannot run sandboxes there is nothing to clean: it logs why and returns nothing.
        """
        spawner = cls(config=config or Config())
        try:
            sandbox.check_host()
        except sandbox.SandboxUnavailable as exc:
            spawner.log.warning("Sandboxed sessions unavailable: %s", exc)
            return []
        removed = sandbox.cleanup_leftovers(spawner.places)
        if removed:
            spawner.log.warning("Removed leftovers of earlier sandbox sessions: %s", ", ".join(removed))
        return removed


GRANTS_FORM = """
<div class="enclave-session">
  <p>Your notebook session runs in a sandbox that can reach only the enclave. It carries the grants
  below and ends when one of them is revoked or expires, or at the enclave's session time limit.</p>
  <table class="table table-condensed">
    <thead><tr><th>Dataset</th><th>Project</th><th>Expires</th><th>&epsilon; left</th></tr></thead>
    <tbody>{rows}</tbody>
  </table>
</div>
"""

NO_GRANTS_FORM = """
<div class="enclave-session alert alert-warning">
  <p><strong>No notebook session is possible yet.</strong> {reason}</p>
</div>
"""


async def grants_form(spawner: SandboxSpawner) -> str:
    """The spawn page: the grants a new session would carry, or why none can start."""
    try:
        user = await spawner.check_eligible()
    except EnclaveRefused as exc:
        return NO_GRANTS_FORM.format(reason=html.escape(exc.jupyterhub_message))
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3g}</td></tr>".format(
            html.escape(g["dataset_id"]),
            html.escape(g["project_id"]),
            html.escape(str(g["expires_at"])[:16].replace("T", " ")),
            float(g["epsilon_total"]) - float(g["epsilon_spent"]),
        )
        for g in user.get("grants", [])
    )
    return GRANTS_FORM.format(rows=rows)

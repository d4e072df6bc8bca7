"""The parts of the sandbox one by one: names and addresses, the nftables table, homes and uids,
traits, failure paths and leftovers without a claim."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from enclave_api.hub import sandbox
from enclave_api.hub.sandbox import Limits, SandboxSpec, Session, Slot
from enclave_api.hub.spawner import SandboxSpawner
from tests.hub.support import RUNTIME, TEST_PREFIX, UID_RANGE

POOL = IPv4Network("10.200.0.0/16")


def test_slot_names_and_addresses() -> None:
    slot = Slot("encl", 5, POOL)
    assert (slot.name, slot.host_veth) == ("encl5", "encl5h")
    assert slot.subnet == IPv4Network("10.200.0.20/30")
    assert (slot.host_ip, slot.session_ip) == (IPv4Address("10.200.0.21"), IPv4Address("10.200.0.22"))
    assert Slot.capacity(POOL) == 16384
    assert len(Slot("abcdefgh", Slot.capacity(POOL) - 1, POOL).host_veth) <= 15  # IFNAMSIZ - 1


@pytest.mark.parametrize(
    ("name", "suffix", "index"),
    [
        ("enct12", "", 12),
        ("enct12h", "h", 12),
        ("enctxhost", "", None),
        ("enct12", "h", None),
        ("encl3", "", None),
    ],
)
def test_slot_index_reads_only_names_of_the_prefix(name: str, suffix: str, index: int | None) -> None:
    assert sandbox.slot_index("enct", name, suffix) == index


@pytest.mark.parametrize("prefix", ["", "Encl", "en-cl", "toolongprefix", "1encl"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        sandbox.check_prefix(prefix)


def test_nft_table_opens_only_the_two_ports_of_the_host_end() -> None:
    text = sandbox.nft_ruleset(Slot("encl", 0, POOL), (8400, 8081, 8400))
    assert 'iifname "encl0h" ip daddr 10.200.0.1 tcp dport { 8081, 8400 } dnat ip to 127.0.0.1' in text
    assert (
        'iifname "encl0h" ct state new ct status dnat ip daddr 127.0.0.1 tcp dport { 8081, 8400 } accept'
        in text
    )
    assert text.count("drop") == 3  # input, forward in, forward out
    assert "table inet encl0" in text  # IPv4 and IPv6 alike


def test_nft_accepts_the_table(host_checked: None) -> None:
    text = sandbox.nft_ruleset(Slot(TEST_PREFIX, 0, POOL), (8400, 8081))
    subprocess.run(["nft", "--check", "-f", "-"], input=text, text=True, check=True)


@pytest.mark.parametrize(
    ("username", "plain"),
    [
        ("alice", True),
        ("a.b-c_d", True),
        ("Alice", False),
        ("../etc", False),
        (".", False),
        ("a" * 65, False),
    ],
)
def test_home_dir_names(username: str, plain: bool) -> None:
    name = sandbox.home_dir_name(username)
    assert (name == username) is plain
    assert "/" not in name and not name.startswith(".")


@pytest.fixture
def fresh_home_root(host_checked: None) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="enclave-homes-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_homes_and_uids_are_stable_private_and_distinct(fresh_home_root: Path) -> None:
    home, uid = sandbox.ensure_home(fresh_home_root, "alice", UID_RANGE)
    assert sandbox.ensure_home(fresh_home_root, "alice", UID_RANGE) == (home, uid)
    assert (home.stat().st_mode & 0o777, home.stat().st_uid, home.stat().st_gid) == (0o700, uid, uid)
    assert (fresh_home_root.stat().st_mode & 0o777) == 0o711
    # A two-uid range: the second user is moved past the first's uid, a third finds none left.
    tiny = (UID_RANGE[0], UID_RANGE[0] + 1)
    root = fresh_home_root / "tiny"
    uids = {sandbox.ensure_home(root, name, tiny)[1] for name in ("u1", "u2")}
    assert uids == set(range(tiny[0], tiny[1] + 1))
    with pytest.raises(sandbox.SandboxError, match="no free uid"):
        sandbox.ensure_home(root, "u3", tiny)


def test_a_home_that_is_a_symlink_is_refused(fresh_home_root: Path) -> None:
    sandbox.ensure_home(fresh_home_root, "seed", UID_RANGE)
    (fresh_home_root / "mallory").symlink_to("/etc")
    with pytest.raises(sandbox.SandboxError, match="not a directory"):
        sandbox.ensure_home(fresh_home_root, "mallory", UID_RANGE)


def test_spec_survives_its_claim(fresh_home_root: Path) -> None:
    spec = SandboxSpec("alice", UID_RANGE[0], fresh_home_root, RUNTIME, (8400, 8081), Limits(2**30, 64, 0.5))
    assert SandboxSpec.from_json(spec.to_json()) == spec


def test_spawner_defaults_keep_the_hub_environment_out() -> None:
    spawner = SandboxSpawner()
    assert spawner.env_keep == []
    assert spawner.disable_user_config is True
    assert spawner.default_url == "/lab"
    assert spawner.mem_limit == 2 * 1024**3
    assert spawner.cpu_limit == 1.0


@pytest.mark.parametrize(
    ("trait", "value"),
    [("network_pool", "10.200.0.0/31"), ("network_pool", "nonsense"), ("name_prefix", "Bad-Prefix")],
)
def test_spawner_refuses_bad_settings(trait: str, value: str) -> None:
    with pytest.raises(TraitError):
        SandboxSpawner(**{trait: value})


def test_failed_session_build_leaves_nothing(fresh_home_root: Path, places: sandbox.Places) -> None:
    before = sandbox.leftover_resources(places)
    home, uid = sandbox.ensure_home(fresh_home_root, "ivy", UID_RANGE)
    spec = SandboxSpec("ivy", uid, home, RUNTIME, allowed_ports=())  # an empty port set: nft refuses it
    with pytest.raises(sandbox.SandboxError, match="nft"):
        Session.create(spec, places, POOL)
    assert sandbox.leftover_resources(places) == before


def test_spawn_without_runtime_fails_cleanly(
    make_spawner: Callable[..., SandboxSpawner], places: sandbox.Places
) -> None:
    before = sandbox.leftover_resources(places)
    spawner = make_spawner("judy", runtime_dir="/nonexistent/runtime")
    with pytest.raises(sandbox.SandboxUnavailable, match="build-runtime"):
        asyncio.run(spawner.start())
    assert sandbox.leftover_resources(places) == before
    assert spawner.get_state() == {}


def test_leftovers_without_a_claim_are_removed(places: sandbox.Places) -> None:
    name = f"{TEST_PREFIX}{Slot.capacity(POOL) - 1}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    places.cgroup(name).create(Limits(pids=8))
    removed = sandbox.cleanup_leftovers(places)
    assert f"netns {name}" in removed
    assert not Path("/run/netns", name).exists()
    assert not places.cgroup(name).path("pids").exists()


def test_a_pool_overlapping_host_addresses_is_refused(fresh_home_root: Path, places: sandbox.Places) -> None:
    home, uid = sandbox.ensure_home(fresh_home_root, "lena", UID_RANGE)
    spec = SandboxSpec("lena", uid, home, RUNTIME, (8400, 8081))
    before = sandbox.leftover_resources(places)
    with pytest.raises(sandbox.SandboxError, match="overlaps the host"):
        Session.create(spec, places, IPv4Network("127.0.0.0/29"))  # holds 127.0.0.1 on lo
    assert sandbox.leftover_resources(places) == before


def test_availability_is_reported_with_a_reason(host_checked: None) -> None:
    config = Config()
    config.SandboxSpawner.runtime_dir = str(RUNTIME)
    assert SandboxSpawner.unavailable_reason(config) is None
    config.SandboxSpawner.runtime_dir = "/nonexistent/runtime"
    reason = SandboxSpawner.unavailable_reason(config)
    assert reason is not None and "build-runtime" in reason

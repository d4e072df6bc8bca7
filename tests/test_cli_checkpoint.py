"""``enclave audit checkpoint`` (the cluster's CronJob), run as a real process on SQLite and PostgreSQL:
it signs a checkpoint of a grown log and publishes it to the sink, and does nothing otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from audit.checkpoint import Checkpoint, verify_checkpoint
from audit.store import tree_size
from audit.verify import load_public_key
from enclave_api.context import Enclave
from enclave_api.roles import Role
from enclave_api.services import identity
from enclave_api.settings import Settings

ENCLAVE = [sys.executable, "-m", "enclave_api"]


def run(*args: str, data_dir: Path, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = os.environ | {"ENCLAVE_LOG_JSON": "false", **env}
    return subprocess.run(
        [*ENCLAVE, *args, "--data-dir", str(data_dir), "--database-url", database_url],
        capture_output=True, text=True, env=environ, timeout=300, check=False,
    )  # fmt: skip


def grow_log(data_dir: Path, database_url: str) -> int:
    """Append events without a checkpoint covering them (as a busy API between checkpoints would)."""
    settings = Settings(data_dir=data_dir, database_url=database_url, audit_checkpoint_every=10_000)
    enclave = Enclave.open(settings)
    try:
        enclave.checkpoint_now()  # whatever opening wrote is covered
        with enclave.write() as session:
            identity.create_org(enclave, session, "test", "hosp-z", "Hospital Z", "hospital")
            identity.create_user(enclave, session, "test", "cust.z", "Cust Z", "hosp-z", [Role.CUSTODIAN])
        with enclave.read() as session:
            return tree_size(session)
    finally:
        # Not enclave.close(): that would sign the checkpoint the command under test must sign.
        enclave.egress_checks.close()
        enclave.db.dispose()


def sink_lines(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "audit-checkpoints.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_signs_and_publishes_a_checkpoint_of_the_grown_log(tmp_path: Path, database_url: str) -> None:
    data_dir = tmp_path / "state"
    size = grow_log(data_dir, database_url)
    published_before = sink_lines(data_dir)
    assert all(line["tree_size"] < size for line in published_before)

    result = run("audit", "checkpoint", data_dir=data_dir, database_url=database_url)
    assert result.returncode == 0, result.stderr
    printed = Checkpoint.from_dict(json.loads(result.stdout))
    assert printed.tree_size == size
    assert f"signed and published a checkpoint of {size} events" in result.stderr
    assert verify_checkpoint(printed, load_public_key(data_dir / "audit-public-key.pem"))
    assert sink_lines(data_dir) == [*published_before, printed.to_dict()]

    # The log did not grow: nothing new is signed or published.
    again = run("audit", "checkpoint", data_dir=data_dir, database_url=database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert f"up to date: the latest checkpoint covers all {size} events" in again.stderr
    assert sink_lines(data_dir) == [*published_before, printed.to_dict()]

    verified = run("audit", "verify", data_dir=data_dir, database_url=database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_production_without_keys_is_a_configuration_error(tmp_path: Path, database_url: str) -> None:
    result = run(
        "audit",
        "checkpoint",
        data_dir=tmp_path / "state",
        database_url=database_url,
        ENCLAVE_MODE="production",
    )
    assert result.returncode == 2
    assert "production mode needs these secrets configured" in result.stderr
    assert not (tmp_path / "state" / "audit-checkpoints.jsonl").exists()

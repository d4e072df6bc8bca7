"""The ``enclave`` command line, run as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_datasets import CSV, META

ENCLAVE = [sys.executable, "-m", "enclave_api"]


def run(
    *args: str, data_dir: Path, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "ENCLAVE_DATA_DIR": str(data_dir),
        "ENCLAVE_LOG_JSON": "false",
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [*ENCLAVE, *args], capture_output=True, text=True, env=env, input=input, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def test_org_user_token_commands(data_dir: Path) -> None:
    run("org", "add", "hosp-x", "--name", "Hospital X", "--kind", "hospital", data_dir=data_dir)
    run(
        "user",
        "add",
        "cust.x",
        "--org",
        "hosp-x",
        "--role",
        "custodian",
        "--name",
        "Cust X",
        data_dir=data_dir,
    )
    run(
        "user",
        "add",
        "both.x",
        "--org",
        "hosp-x",
        "--role",
        "custodian",
        "--role",
        "auditor",
        data_dir=data_dir,
    )
    listed = json.loads(run("user", "list", "--json", data_dir=data_dir).stdout)
    assert {u["id"]: u["roles"] for u in listed} == {
        "both.x": ["auditor", "custodian"],
        "cust.x": ["custodian"],
    }
    token = run("token", "issue", "cust.x", "--days", "1", data_dir=data_dir).stdout.strip()
    assert token.startswith("enc_")
    import sqlite3

    with sqlite3.connect(data_dir / "enclave.db") as db:
        (token_id,) = db.execute("SELECT id FROM api_tokens WHERE user_id = 'cust.x'").fetchone()
    assert "revoked" in run("token", "revoke", token_id, data_dir=data_dir).stdout
    again = run("token", "revoke", token_id, data_dir=data_dir, check=False)
    assert again.returncode == 1 and "already revoked" in again.stderr
    assert run("token", "revoke", "tok-unknown", data_dir=data_dir, check=False).returncode == 1
    # Bad input: unknown role, unknown org, duplicate user, absurd lifetime.
    assert (
        run(
            "user",
            "add",
            "z.z",
            "--org",
            "hosp-x",
            "--role",
            "wizard",
            data_dir=data_dir,
            check=False,
        ).returncode
        == 2
    )
    assert (
        run(
            "user",
            "add",
            "z.z",
            "--org",
            "nowhere",
            "--role",
            "researcher",
            data_dir=data_dir,
            check=False,
        ).returncode
        == 1
    )
    assert (
        run(
            "user",
            "add",
            "cust.x",
            "--org",
            "hosp-x",
            "--role",
            "researcher",
            data_dir=data_dir,
            check=False,
        ).returncode
        == 1
    )
    bad = run("token", "issue", "cust.x", "--days", "9999", data_dir=data_dir, check=False)
    assert bad.returncode == 1 and "lifetime" in bad.stderr


def test_user_with_password_prompt(data_dir: Path) -> None:
    run("org", "add", "hosp-y", "--name", "Y", "--kind", "hospital", data_dir=data_dir)
    run("user", "add", "pw.user", "--org", "hosp-y", "--role", "custodian", "--password",
        data_dir=data_dir, input="a-long-enough-password\na-long-enough-password\n")  # fmt: skip
    short = run("user", "add", "pw.short", "--org", "hosp-y", "--role", "custodian", "--password",
                data_dir=data_dir, input="short\nshort\n", check=False)  # fmt: skip
    assert short.returncode == 1 and "12 characters" in short.stderr


def test_dataset_register_and_keys_rotate(data_dir: Path, tmp_path: Path) -> None:
    run(
        "org",
        "add",
        "hanbit-cancer-center",
        "--name",
        "Hanbit",
        "--kind",
        "hospital",
        data_dir=data_dir,
    )
    run(
        "user",
        "add",
        "cust.h",
        "--org",
        "hanbit-cancer-center",
        "--role",
        "custodian",
        data_dir=data_dir,
    )
    csv, meta = tmp_path / "mini.csv", tmp_path / "mini.json"
    csv.write_text(CSV, encoding="utf-8")
    meta.write_text(json.dumps(META))
    args = [
        "dataset",
        "register",
        str(csv),
        "--id",
        "mini_cohort",
        "--custodian-org",
        "hanbit-cancer-center",
        "--metadata",
        str(meta),
    ]
    out = run(*args, data_dir=data_dir).stdout
    assert "3 rows" in out
    again = run(*args, data_dir=data_dir, check=False)
    assert again.returncode == 1 and "already registered" in again.stderr
    mismatch = run(*args[:3], "--id", "other", *args[5:], data_dir=data_dir, check=False)
    assert mismatch.returncode == 2
    rotated = run("keys", "rotate", data_dir=data_dir).stdout
    assert "1 data keys re-wrapped" in rotated


def test_bad_configuration_exits_2(data_dir: Path) -> None:
    env_mode = run("user", "list", data_dir=data_dir, check=False)
    assert env_mode.returncode == 0
    result = subprocess.run(
        [*ENCLAVE, "user", "list"], capture_output=True, text=True, timeout=60,
        env=os.environ | {"ENCLAVE_DATA_DIR": str(data_dir / "p"), "ENCLAVE_MODE": "production"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "ENCLAVE_TOKEN_PEPPER" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_seed_then_up_serves_the_api(data_dir: Path) -> None:
    run("demo", "seed", "--patients", "200", data_dir=data_dir)
    for name in ("demo-tokens.json", "demo-logins.json"):
        assert oct((data_dir / name).stat().st_mode & 0o777) == "0o600"
    tokens = json.loads((data_dir / "demo-tokens.json").read_text())
    assert set(tokens) >= {"researcher", "custodian", "custodian2", "auditor", "admin"}
    logins = json.loads((data_dir / "demo-logins.json").read_text())
    assert logins["researcher"]["username"] == "minji.park" and len(logins["researcher"]["password"]) >= 12
    assert "already seeded" in run("demo", "seed", data_dir=data_dir).stdout

    port = _free_port()
    env = os.environ | {"ENCLAVE_DATA_DIR": str(data_dir), "ENCLAVE_LOG_JSON": "true"}
    server = subprocess.Popen(
        [*ENCLAVE, "up", "--no-hub", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "API did not come up"
            time.sleep(0.2)
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {tokens['researcher']}"})
        assert me.json()["id"] == "minji.park"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'enclave_http_requests_total{method="GET",route="/v1/me",status="200"} 1.0' in metrics
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "Secure data enclave API"
        assert "Log in" in httpx.get(f"{base}/portal/login").text
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"API: http://127.0.0.1:{port}" in out
    assert f"Portal: http://127.0.0.1:{port}/portal/" in out and "Hub: off (--no-hub)" in out
    # A newcomer sees whom to log in as.
    assert f"researcher   minji.park     {logins['researcher']['password']}" in out
    access_lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/v1/me" and line.get("user") == "minji.park" for line in access_lines)


def test_pii_scan_exit_codes_and_json(tmp_path: Path) -> None:
    clean = tmp_path / "summary.csv"
    clean.write_text("stage,mean_age\nI,54.2\nII,57.9\n", encoding="utf-8")
    leaky = tmp_path / "notes.txt"
    leaky.write_text("Call 010-2345-6789 about 김민지 (RRN 900101-1234568).\n", encoding="utf-8")
    deny = tmp_path / "deny.json"
    deny.write_text(json.dumps({"name": ["김민지"]}, ensure_ascii=False), encoding="utf-8")

    ok = run("pii", "scan", str(clean), data_dir=tmp_path, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    found = run(
        "pii", "scan", str(clean), str(leaky), "--format", "json", "--deny-list", str(deny),
        data_dir=tmp_path, check=False,
    )  # fmt: skip
    assert found.returncode == 3, found.stderr
    report = json.loads(found.stdout)
    rules = {f["rule"] for file in report["files"] for f in file["findings"]}
    assert {"KR_PHONE", "KR_RRN", "DENY_LIST"} <= rules
    assert "900101-1234568" not in found.stdout and "김민지" not in found.stdout
    text = run("pii", "scan", str(leaky), data_dir=tmp_path, check=False)
    assert text.returncode == 3 and "notes.txt: line 1" in text.stdout
    missing = run("pii", "scan", str(tmp_path / "absent.csv"), data_dir=tmp_path, check=False)
    assert missing.returncode == 2

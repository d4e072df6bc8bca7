"""The egress airlock end to end through the real API: quarantine, automatic checks in the isolated
worker (real Presidio recognizers, OCR, disclosure control, DP provenance), custodian reviews,
signed release manifest, download — and the ways a request is blocked or refused."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import nbformat
import polars as pl
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from audit.store import AuditEvent, verify_database
from enclave_api import workers
from enclave_api.client import EnclaveClient
from enclave_api.context import Enclave
from enclave_api.models import Dataset, EgressRequest
from enclave_api.services import egress as egress_service
from enclave_api.services.datasets import load_table
from enclave_api.services.egress import verify_manifest
from privacy.egress import CheckWorker
from privacy.pii.romanize import family_spellings, romanize
from tests.conftest import audit_events, bearer, dead_worker, session_token

REGISTRY = "hanbit_registry"  # its metadata asks for two independent egress reviews
JUSTIFICATION = "Aggregate survival results for the consortium report."


@pytest.fixture(scope="session")
def _shared_worker() -> Iterator[CheckWorker]:
    """One check worker process for the whole run (starting one costs a few seconds)."""
    worker = CheckWorker(timeout=300)
    yield worker
    worker.close()


@pytest.fixture
def airlock(seeded_enclave: Enclave, _shared_worker: CheckWorker) -> Iterator[Enclave]:
    own = seeded_enclave.egress_checks
    seeded_enclave.egress_checks = _shared_worker
    yield seeded_enclave
    seeded_enclave.egress_checks = own


@pytest.fixture
def tokens(seeded_enclave: Enclave, tokens: dict[str, str]) -> dict[str, str]:
    """The demo tokens, the researcher's being a notebook session's credential (submissions need one)."""
    return tokens | {
        "researcher": session_token(seeded_enclave, "minji.park"),
        "researcher_api": tokens["researcher"],
    }


def test_submissions_need_a_session_credential(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    response = _submit(seeded_client, tokens["researcher_api"], {"summary.txt": b"mean 14.1"}, project)
    assert response.status_code == 403
    assert "notebook session" in response.json()["detail"]
    with airlock.read() as session:
        assert session.scalar(select(func.count()).select_from(EgressRequest)) == 0
    denied = audit_events(airlock, "access.denied")
    assert [(e["actor"], e["details"]["status"], e["details"]["path"]) for e in denied] == [
        ("minji.park", 403, "/v1/egress-requests")
    ]


def _grant(
    client: TestClient, tokens: dict[str, str], dataset: str = REGISTRY, custodian: str = "custodian"
) -> str:
    """A fresh project of the demo researcher with an approved grant on ``dataset``; the project id."""
    project = client.post(
        "/v1/projects",
        json={"title": "Egress study", "purpose": "Outcomes"},
        headers=bearer(tokens["researcher"]),
    ).json()["id"]
    request = client.post(
        "/v1/access-requests",
        json={
            "project_id": project,
            "dataset_id": dataset,
            "purpose": "Survival by stage.",
            "epsilon": 3.0,
            "delta": 1e-6,
            "days": 30,
            "dua_accepted": True,
        },
        headers=bearer(tokens["researcher"]),
    ).json()["id"]
    decided = client.post(
        f"/v1/access-requests/{request}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens[custodian]),
    )
    assert decided.status_code == 200, decided.text
    return str(project)


def _submit(client: TestClient, token: str, files: dict[str, bytes], project: str | None = None) -> Any:
    data = {"justification": JUSTIFICATION} | ({"project_id": project} if project else {})
    return client.post(
        "/v1/egress-requests",
        files=[("files", (name, content)) for name, content in files.items()],
        data=data,
        headers=bearer(token),
    )


def _figure(text: str) -> bytes:
    image = Image.new("RGB", (900, 220), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 80), text, fill="black", font=ImageFont.load_default(size=40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _notebook(release_table: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Survival by stage\nCounts are DP releases (ε = 1)."),
        nbformat.v4.new_code_cell(
            "from enclave_api.client import connect\n"
            "result = connect().query('hanbit_registry').count().run(1.0)",
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=release_table)],
        ),
    ]
    return nbformat.writes(nb).encode()


def _rules(response: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["file"], f["check"], f["rule"]) for c in response["checks"] for f in c["findings"]}


def _audit_types(enclave: Enclave) -> list[str]:
    with enclave.read() as session:
        return list(session.scalars(select(AuditEvent.type).where(AuditEvent.type.like("egress.%"))))


def test_dp_table_figure_and_notebook_go_out_after_two_reviews(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    project = _grant(seeded_client, tokens)
    researcher = EnclaveClient("http://testserver", tokens["researcher"], http=seeded_client)
    release = researcher.query(REGISTRY).group_by("stage").count("n").run(epsilon=1.0)
    table_path, manifest_path = researcher.export(release, tmp_path / "stage_counts.csv")
    (tmp_path / "km_curve.png").write_bytes(_figure("Kaplan-Meier survival by stage"))
    (tmp_path / "analysis.ipynb").write_bytes(_notebook(table_path.read_text()))

    submitted = researcher.submit_egress(
        [table_path, manifest_path, tmp_path / "km_curve.png", tmp_path / "analysis.ipynb"],
        JUSTIFICATION,
        project_id=project,
    )
    assert submitted["status"] == "in_review", json.dumps(submitted["checks"], indent=1)
    by_file = {c["name"]: c for c in submitted["checks"]}
    assert by_file["stage_counts.csv"]["dp_release"] == release.release_id
    assert by_file["km_curve.png"]["kind"] == "png"
    assert by_file["analysis.ipynb"]["kind"] == "notebook"
    assert all(c["outcome"] != "block" for c in submitted["checks"])
    assert submitted["approvals_missing"] == {"hanbit-cancer-center": 2}
    request_id = submitted["id"]

    # Nothing leaves before approval; other hospitals do not even see the request.
    early = seeded_client.get(
        f"/v1/egress-requests/{request_id}/files/stage_counts.csv", headers=bearer(tokens["researcher"])
    )
    assert early.status_code == 409
    assert (
        seeded_client.get(
            f"/v1/egress-requests/{request_id}", headers=bearer(tokens["custodian2"])
        ).status_code
        == 404
    )

    # The reviewer sees the report and the requester's earlier DP releases (differencing checks).
    seen = seeded_client.get(f"/v1/egress-requests/{request_id}", headers=bearer(tokens["custodian"])).json()
    assert release.release_id in {r["release_id"] for r in seen["history"]["dp_releases"]}

    first = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews",
        json={"decision": "approve", "comment": "Counts are DP."},
        headers=bearer(tokens["custodian"]),
    )
    assert first.status_code == 200 and first.json()["status"] == "in_review"
    assert first.json()["approvals_missing"] == {"hanbit-cancer-center": 1}
    again = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews",
        json={"decision": "approve"},
        headers=bearer(tokens["custodian"]),
    )
    assert again.status_code == 409  # one review per reviewer and round
    second = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews", json={"decision": "approve", "comment": "Fine."},
        headers=bearer(tokens["custodian1b"]),
    )  # fmt: skip
    assert second.status_code == 200 and second.json()["status"] == "released"

    # Only the requester downloads; the bytes are the submitted ones; the manifest is signed.
    out = researcher.download_egress(request_id, tmp_path / "out")
    assert (tmp_path / "out" / "stage_counts.csv").read_bytes() == table_path.read_bytes()
    assert (tmp_path / "out" / "km_curve.png").read_bytes() == (tmp_path / "km_curve.png").read_bytes()
    assert len(out) == 5
    signed = json.loads((tmp_path / "out" / f"{request_id}.manifest.json").read_text())
    public_key = airlock.secrets.signing_key.public_key()
    assert verify_manifest(signed["manifest"], signed["signature"], public_key)
    assert {r["reviewer"] for r in signed["manifest"]["reviews"]} == {"jiho.kim", "eunji.song"}
    tampered = signed["manifest"] | {"reviews": signed["manifest"]["reviews"][:1]}
    assert not verify_manifest(tampered, signed["signature"], public_key)
    for role in ("custodian", "auditor"):
        denied = seeded_client.get(
            f"/v1/egress-requests/{request_id}/files/km_curve.png", headers=bearer(tokens[role])
        )
        assert denied.status_code == 403  # released files are for researchers (their requester) only

    types = _audit_types(airlock)
    for expected in (
        "egress.submitted",
        "egress.checking",
        "egress.checked",
        "egress.reviewed",
        "egress.released",
    ):
        assert expected in types
    assert types.count("egress.downloaded") == 4
    with airlock.read() as session:
        assert verify_database(session, public_key, airlock.sink).ok


def _registry_identifiers(enclave: Enclave) -> dict[str, str]:
    with enclave.read() as session:
        dataset = session.get_one(Dataset, REGISTRY)
        table = pl.DataFrame(load_table(enclave, session, dataset))
    row = table.row(7, named=True)
    return {k: str(row[k]) for k in ("patient_name", "rrn", "phone", "mrn")}


def test_identifiers_in_any_form_block_the_request_without_echoing_them(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    ids = _registry_identifiers(airlock)
    full_width_rrn = ids["rrn"].translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    secret_text = f"follow up {ids['phone']}".encode()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "print(x)",
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={"text/plain": base64.b64encode(secret_text).decode()}
                )
            ],
        )
    ]
    table = io.StringIO()
    csv.writer(table).writerows([["stage", "n", "note"], ["II", "40", f"{ids['patient_name']}님 재발"]])
    files = {
        "patients.csv": table.getvalue().encode(),
        "memo.txt": f"RRN {full_width_rrn} and record {ids['mrn']}".encode(),
        "nb.ipynb": nbformat.writes(notebook).encode(),
    }
    response = _submit(seeded_client, tokens["researcher"], files, project)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "blocked"
    outcome = {c["name"]: c["outcome"] for c in body["checks"]}
    assert outcome == {"patients.csv": "block", "memo.txt": "block", "nb.ipynb": "block"}
    rules = _rules(body)
    assert ("patients.csv", "pii", "DENY_LIST") in rules
    assert any(f == "memo.txt" and r in ("KR_RRN", "DENY_LIST") for f, _, r in rules)
    assert any(f == "nb.ipynb" and r in ("KR_PHONE", "DENY_LIST") for f, _, r in rules)
    # The report names where, never the identifier itself.
    for value in ids.values():
        assert value not in response.text
    # A blocked request can only be withdrawn: no review, no release.
    review = seeded_client.post(
        f"/v1/egress-requests/{body['id']}/reviews",
        json={"decision": "approve"},
        headers=bearer(tokens["custodian"]),
    )
    assert review.status_code == 409
    assert "egress.checked" in _audit_types(airlock)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("results.csv", _zip({"inner.zip": _zip({"x.csv": b"a,b\n1,2\n"})}), "forbidden_type"),
        ("results.csv", b"\x1f\x8b\x08\x00" + b"\x00" * 40, "forbidden_type"),
        ("model.json", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.", "forbidden_type"),
        ("run.txt", b"\x7fELF\x02\x01\x01" + b"\x00" * 60, "forbidden_type"),
        ("table.csv", b"a,b\n\xff\xfe,1\n", "unreadable"),
        ("figure.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "unreadable"),
        ("notes.docx", b"hello", "forbidden_type"),
    ],
)
def test_bad_files_block_the_request(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str], name: str, content: bytes, rule: str
) -> None:
    project = _grant(seeded_client, tokens)
    body = _submit(seeded_client, tokens["researcher"], {name: content, "ok.txt": b"fine"}, project).json()
    assert body["status"] == "blocked"
    assert (name, "file", rule) in _rules(body)
    # The other file was still checked, and everything stays in quarantine.
    assert {c["name"]: c["outcome"] for c in body["checks"]}["ok.txt"] == "pass"


def _raw_multipart(filename: bytes, data: bytes, project: str) -> tuple[bytes, str]:
    """A multipart body with the file name exactly as given (HTTP clients would escape it)."""
    boundary = "enclave-test-boundary"
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="justification"\r\n\r\n%s\r\n'
        % (boundary.encode(), JUSTIFICATION.encode()),
        b'--%s\r\nContent-Disposition: form-data; name="project_id"\r\n\r\n%s\r\n'
        % (boundary.encode(), project.encode()),
        b'--%s\r\nContent-Disposition: form-data; name="files"; filename="%s"\r\n'
        b"Content-Type: text/csv\r\n\r\n%s\r\n" % (boundary.encode(), filename, data),
        b"--%s--\r\n" % boundary.encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "name",
    [
        "../x.csv",
        "..",
        "/etc/passwd",
        "a\x00b.csv",
        "a\x1bb.csv",
        "a\u202ecsv.txt",
        "x" * 300 + ".csv",
        "\uff52\uff45\uff53\uff55\uff4c\uff54.csv",
        "p\u0430tients.csv",
        ".hidden.csv",
        "",
    ],
)
def test_odd_file_names_are_refused_and_nothing_is_stored(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str], name: str
) -> None:
    project = _grant(seeded_client, tokens)
    body, content_type = _raw_multipart(name.encode(), b"a,b\n1,2\n", project)
    headers = bearer(tokens["researcher"]) | {"Content-Type": content_type}
    response = seeded_client.post("/v1/egress-requests", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    with airlock.read() as session:
        assert session.scalar(select(func.count()).select_from(EgressRequest)) == 0


def test_korean_file_names_are_fine(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    body = _submit(seeded_client, tokens["researcher"], {"생존분석_결과.txt": b"median 61 months"}, project)
    assert body.status_code == 201 and body.json()["files"][0]["name"] == "생존분석_결과.txt"


def test_files_over_the_limit_are_413(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    airlock.settings.egress_max_file_bytes = 1000
    response = _submit(seeded_client, tokens["researcher"], {"big.txt": b"x" * 1001}, project)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_altered_dp_numbers_are_blocked(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    project = _grant(seeded_client, tokens)
    researcher = EnclaveClient("http://testserver", tokens["researcher"], http=seeded_client)
    release = researcher.query(REGISTRY).group_by("stage").count("n").run(epsilon=0.5)
    table, manifest = researcher.export(release, tmp_path / "counts.csv")
    rows = list(csv.reader(io.StringIO(table.read_text())))
    rows[1][1] = str(int(float(rows[1][1])) + 1)
    altered = io.StringIO()
    csv.writer(altered).writerows(rows)
    files = {"counts.csv": altered.getvalue().encode(), "counts.csv.release.json": manifest.read_bytes()}
    body = _submit(seeded_client, tokens["researcher"], files, project).json()
    assert body["status"] == "blocked"
    assert ("counts.csv", "dp_provenance", "numbers_differ") in _rules(body)

    forged = json.loads(manifest.read_text())
    forged["release"]["epsilon"] = 0.01
    files = {"counts.csv": table.read_bytes(), "counts.csv.release.json": json.dumps(forged).encode()}
    body = _submit(seeded_client, tokens["researcher"], files, project).json()
    assert ("counts.csv", "dp_provenance", "bad_signature") in _rules(body)


def test_small_counts_outside_dp_go_to_review_with_sdc_findings(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    table = b"stage,n\n0,3\nI,120\nII,0\n"
    body = _submit(seeded_client, tokens["researcher"], {"counts.csv": table}, project).json()
    assert body["status"] == "in_review"
    findings = [f for c in body["checks"] for f in c["findings"] if f["check"] == "sdc"]
    rules = {f["rule"] for f in findings}
    assert {"threshold", "zero"} <= rules
    assert any("'n'" in f["location"] for f in findings)


def _die(conn: Any, memory: int) -> None:
    import os
    import signal

    conn.recv()
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingWorker(CheckWorker):
    target = staticmethod(_die)


def _hang(conn: Any, memory: int) -> None:
    conn.recv()
    time.sleep(60)


class HangingWorker(CheckWorker):
    target = staticmethod(_hang)


@pytest.mark.parametrize(
    ("worker_cls", "timeout", "rule"),
    [(CrashingWorker, 120, "scanner_crashed"), (HangingWorker, 10, "scanner_timeout")],
)
def test_a_scanner_crash_or_hang_blocks_never_releases(
    seeded_enclave: Enclave,
    seeded_client: TestClient,
    tokens: dict[str, str],
    worker_cls: type[CheckWorker],
    timeout: float,
    rule: str,
) -> None:
    project = _grant(seeded_client, tokens)
    own = seeded_enclave.egress_checks
    seeded_enclave.egress_checks = worker_cls(timeout=timeout)
    try:
        body = _submit(seeded_client, tokens["researcher"], {"clean.txt": b"nothing here"}, project).json()
    finally:
        seeded_enclave.egress_checks.close()
        seeded_enclave.egress_checks = own
    assert body["status"] == "blocked"
    assert ("clean.txt", "file", rule) in _rules(body)


def test_changes_requested_then_resubmitted_and_rejected(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    project = _grant(seeded_client, tokens, dataset="wdbc")
    body = _submit(seeded_client, tokens["researcher"], {"summary.txt": b"mean radius 14.1"}, project).json()
    request_id = body["id"]
    assert body["datasets"] == [{"dataset_id": "wdbc", "org": "hanbit-cancer-center", "reviews_required": 1}]
    no_comment = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews", json={"decision": "changes_requested"},
        headers=bearer(tokens["custodian"]),
    )  # fmt: skip
    assert no_comment.status_code == 422
    # The researcher cannot review; the auditor cannot review; another hospital cannot see it.
    for role, status in (("researcher", 403), ("auditor", 403), ("custodian2", 404)):
        attempt = seeded_client.post(
            f"/v1/egress-requests/{request_id}/reviews",
            json={"decision": "approve"},
            headers=bearer(tokens[role]),
        )
        assert attempt.status_code == status, (role, attempt.text)
    changes = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews",
        json={"decision": "changes_requested", "comment": "Add units."},
        headers=bearer(tokens["custodian"]),
    )
    assert changes.json()["status"] == "changes_requested"
    revised = tmp_path / "summary.txt"
    revised.write_bytes(b"mean radius 14.1 mm")
    researcher = EnclaveClient("http://testserver", tokens["researcher"], http=seeded_client)
    resubmitted = researcher.resubmit_egress(request_id, [revised], JUSTIFICATION)
    assert resubmitted["round"] == 2 and resubmitted["status"] == "in_review"
    assert resubmitted["reviews"] == []  # a new round is reviewed afresh
    rejected = seeded_client.post(
        f"/v1/egress-requests/{request_id}/reviews", json={"decision": "reject", "comment": "Not needed."},
        headers=bearer(tokens["custodian"]),
    )  # fmt: skip
    assert rejected.json()["status"] == "rejected"
    withdraw = seeded_client.post(
        f"/v1/egress-requests/{request_id}/withdraw", headers=bearer(tokens["researcher"])
    )
    assert withdraw.status_code == 409


def test_lists_show_each_role_its_requests(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens, dataset="wdbc")
    request_id = _submit(seeded_client, tokens["researcher"], {"a.txt": b"ok"}, project).json()["id"]
    for role, visible in (
        ("researcher", True),
        ("custodian", True),
        ("custodian1b", True),
        ("custodian2", False),
        ("auditor", True),
    ):
        listed = seeded_client.get("/v1/egress-requests", headers=bearer(tokens[role])).json()
        assert (request_id in {r["id"] for r in listed}) is visible, role
    withdrawn = seeded_client.post(
        f"/v1/egress-requests/{request_id}/withdraw", headers=bearer(tokens["researcher"])
    )
    assert withdrawn.json()["status"] == "withdrawn"


def test_egress_needs_an_active_grant(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = seeded_client.post(
        "/v1/projects", json={"title": "No grant", "purpose": "x"}, headers=bearer(tokens["researcher"])
    ).json()["id"]
    response = _submit(seeded_client, tokens["researcher"], {"a.txt": b"ok"}, project)
    assert response.status_code == 403
    assert _submit(seeded_client, tokens["custodian"], {"a.txt": b"ok"}).status_code == 403


def test_a_request_interrupted_mid_check_is_checked_again_on_recovery(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens, dataset="wdbc")
    request_id = _submit(seeded_client, tokens["researcher"], {"a.txt": b"ok"}, project).json()["id"]
    with airlock.write() as session:  # as if this process were still checking it
        request = session.get_one(EgressRequest, request_id)
        request.status, request.report, request.worker = "checking", None, workers.current()
    assert egress_service.recover_interrupted(airlock) == 0  # its process runs: left alone
    with airlock.write() as session:  # as if the API died after "checking" was committed
        session.get_one(EgressRequest, request_id).worker = dead_worker()
    assert egress_service.recover_interrupted(airlock) == 1
    with airlock.read() as session:
        request = session.get_one(EgressRequest, request_id)
        assert request.status == "in_review" and request.report is not None
    assert egress_service.recover_interrupted(airlock) == 0
    # A process elsewhere (nothing to inspect) is presumed dead once the checks' lease ran out.
    with airlock.write() as session:
        request = session.get_one(EgressRequest, request_id)
        request.status, request.worker = "checking", "another-host/0/1/1"
        request.updated_at = airlock.now() - timedelta(seconds=airlock.settings.egress_check_timeout_seconds)
    assert egress_service.recover_interrupted(airlock) == 0
    with airlock.write() as session:
        session.get_one(EgressRequest, request_id).updated_at -= timedelta(minutes=2)
    assert egress_service.recover_interrupted(airlock) == 1
    assert [e["details"]["round"] for e in audit_events(airlock, "egress.checked")] == [1, 1, 1]


def test_romanised_names_and_identifiers_in_figures_are_found(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    ids = _registry_identifiers(airlock)
    name = ids["patient_name"]
    spellings = family_spellings(name[0])
    romanised = f"{romanize(name[1:]).title()} {spellings[-1].upper()}"  # e.g. "Minjun KIM": given first
    files = {
        "letter.md": f"# Case\nPatient **{romanised}** relapsed in 2021.".encode(),
        "scatter.png": _figure(f"outlier: {ids['phone']}"),
    }
    body = _submit(seeded_client, tokens["researcher"], files, project).json()
    assert body["status"] == "blocked"
    outcome = {c["name"]: c["outcome"] for c in body["checks"]}
    assert outcome == {"letter.md": "block", "scatter.png": "block"}, json.dumps(body["checks"], indent=1)
    findings = [f for c in body["checks"] for f in c["findings"] if c["name"] == "scatter.png"]
    assert any("OCR" in f["location"] for f in findings)


def test_concurrent_approvals_release_exactly_once(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    request_id = _submit(seeded_client, tokens["researcher"], {"a.txt": b"median 61 months"}, project).json()[
        "id"
    ]
    barrier = threading.Barrier(2)

    def approve(role: str) -> int:
        barrier.wait()
        response = seeded_client.post(
            f"/v1/egress-requests/{request_id}/reviews",
            json={"decision": "approve"},
            headers=bearer(tokens[role]),
        )
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(approve, ["custodian", "custodian1b"]))
    assert statuses == [200, 200]
    final = seeded_client.get(
        f"/v1/egress-requests/{request_id}", headers=bearer(tokens["researcher"])
    ).json()
    assert final["status"] == "released" and len(final["reviews"]) == 2
    assert _audit_types(airlock).count("egress.released") == 1


def test_an_unreadable_dataset_for_the_deny_list_blocks_instead_of_skipping_the_check(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens)
    # A fresh worker that has no deny-list yet must build one; make the registry's ciphertext unreadable.
    airlock.egress_checks = CheckWorker(timeout=300)
    try:
        with airlock.read() as session:
            blob = session.get_one(Dataset, REGISTRY).blob_name
        (airlock.settings.store_dir / blob).write_bytes(b"garbage")
        body = _submit(seeded_client, tokens["researcher"], {"a.txt": b"median 61 months"}, project).json()
    finally:
        airlock.egress_checks.close()
    assert body["status"] == "blocked"
    assert ("a.txt", "file", "scanner_error") in _rules(body)


def test_malformed_submissions_are_clear_422s(
    airlock: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    project = _grant(seeded_client, tokens, dataset="wdbc")
    headers = bearer(tokens["researcher"])
    airlock.settings.egress_max_files = 3
    too_many = _submit(seeded_client, tokens["researcher"], {f"f{i}.txt": b"x" for i in range(4)}, project)
    no_files = seeded_client.post(
        "/v1/egress-requests", data={"justification": JUSTIFICATION, "project_id": project}, headers=headers
    )
    blank_reason = seeded_client.post(
        "/v1/egress-requests",
        files=[("files", ("a.txt", b"x"))],
        data={"justification": "   ", "project_id": project},
        headers=headers,
    )
    twice = seeded_client.post(
        "/v1/egress-requests",
        files=[("files", ("a.txt", b"x")), ("files", ("a.txt", b"y"))],
        data={"justification": JUSTIFICATION, "project_id": project},
        headers=headers,
    )
    unknown_project = _submit(seeded_client, tokens["researcher"], {"a.txt": b"x"}, "p-000000000000")
    bad_review = seeded_client.post(
        "/v1/egress-requests/eg-000000000000/reviews",
        json={"decision": "maybe"},
        headers=bearer(tokens["custodian"]),
    )
    for response, status in (
        (too_many, 422),
        (no_files, 422),
        (blank_reason, 422),
        (twice, 422),
        (unknown_project, 404),
        (bad_review, 422),
    ):
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    with airlock.read() as session:
        assert session.scalar(select(func.count()).select_from(EgressRequest)) == 0
    anonymous = seeded_client.get("/v1/egress-requests")
    assert anonymous.status_code == 401

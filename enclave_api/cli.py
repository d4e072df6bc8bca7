"""The ``enclave`` command line (Typer).

Every command takes ``--data-dir`` (env ``ENCLAVE_DATA_DIR``, default ``.enclave``) and
``--database-url`` (env ``ENCLAVE_DATABASE_URL``, default SQLite in the data dir) after its own name.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from enclave_api.context import Enclave
from enclave_api.errors import ConfigurationError, EnclaveError
from enclave_api.hub.embedded import PROXY_NAME, HubLayout, HubProcess, find_proxy, unavailable_reason
from enclave_api.metadata import parse_metadata
from enclave_api.roles import Role
from enclave_api.services import sessions
from enclave_api.services.identity import Principal
from enclave_api.settings import Settings

app = typer.Typer(help="Secure data enclave: run the service and administer it.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets.", no_args_is_help=True)
keys_app = typer.Typer(help="Key management.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo world.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
pii_app = typer.Typer(help="The egress PII scanner.", no_args_is_help=True)
for sub, name in (
    (pii_app, "pii"),
    (audit_app, "audit"),
    (user_app, "user"),
    (token_app, "token"),
    (dataset_app, "dataset"),
    (keys_app, "keys"),
    (demo_app, "demo"),
    (org_app, "org"),
):
    app.add_typer(sub, name=name)

err = Console(stderr=True)
out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="ENCLAVE_DATA_DIR", help="State directory")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="ENCLAVE_DATABASE_URL", help="SQLAlchemy database URL"),
]


def cli_actor() -> str:
    """Audit actor of CLI commands: the operator's OS account."""
    return f"cli:{getpass.getuser()}"[:64]


def make_settings(data_dir: Path, database_url: str | None, **extra: object) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, **extra)  # type: ignore[arg-type]


@contextmanager
def opened(data_dir: Path, database_url: str | None) -> Iterator[Enclave]:
    """Open the enclave or exit with a clear message (exit code 2) on a configuration problem."""
    try:
        enclave = Enclave.open(make_settings(data_dir, database_url))
    except ConfigurationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        yield enclave
    except EnclaveError as exc:
        err.print(f"[red]{exc.title}:[/red] {exc.detail}")
        raise typer.Exit(1) from exc
    finally:
        enclave.close()


@contextmanager
def progress() -> Iterator[Progress]:
    """A spinner with steps on a terminal; silent when output is redirected."""
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=False,
    )
    with bar:
        yield bar


@org_app.command("add")
def org_add(
    org_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    kind: Annotated[str, typer.Option(help="hospital, pharma, oversight or operator")],
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Add an organisation."""
    from enclave_api.services import identity

    with opened(data_dir, database_url) as enclave, enclave.write() as session:
        identity.create_org(enclave, session, cli_actor(), org_id, name, kind)
    out.print(f"organisation {org_id} added")


@user_app.command("add")
def user_add(
    user_id: str,
    org: Annotated[str, typer.Option(help="Organisation id")],
    role: Annotated[list[Role], typer.Option(help="Role (repeat for several)")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password: Annotated[
        bool, typer.Option("--password/--no-password", help="Prompt for a login password")
    ] = False,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user with one or more roles."""
    from enclave_api.services import identity

    secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    with opened(data_dir, database_url) as enclave, enclave.write() as session:
        identity.create_user(enclave, session, cli_actor(), user_id, name or user_id, org, role, secret)
    out.print(f"user {user_id} created")


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """List users with their organisation and roles."""
    from enclave_api.services import identity

    with opened(data_dir, database_url) as enclave, enclave.read() as session:
        users = identity.list_users(session)
        rows = [
            {"id": u.id, "name": u.name, "org": u.org_id, "roles": u.roles, "disabled": u.disabled}
            for u in users
        ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "name", "org", "roles")
    for user_row in rows:
        roles: list[str] = user_row["roles"]  # type: ignore[assignment]
        table.add_row(str(user_row["id"]), str(user_row["name"]), str(user_row["org"]), ", ".join(roles))
    out.print(table)


@token_app.command("issue")
def token_issue(
    user_id: str,
    days: Annotated[int, typer.Option(help="Lifetime in days")] = 30,
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Issue an API token; it is printed once and stored only hashed."""
    from enclave_api.services import identity

    with opened(data_dir, database_url) as enclave, enclave.write() as session:
        issued = identity.issue_token(enclave, session, cli_actor(), user_id, name=name, days=days)
    print(issued.token)


@token_app.command("revoke")
def token_revoke(
    token_id: str, data_dir: DataDir = Path(".enclave"), database_url: DatabaseUrl = None
) -> None:
    """Revoke an API token by its id (``tok-…``)."""
    from enclave_api.services import identity

    with opened(data_dir, database_url) as enclave, enclave.write() as session:
        identity.revoke_token(enclave, session, cli_actor(), token_id)
    out.print(f"token {token_id} revoked")


@dataset_app.command("register")
def dataset_register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet")],
    dataset_id: Annotated[str, typer.Option("--id", help="Dataset id (must match the metadata)")],
    custodian_org: Annotated[str, typer.Option(help="Custodian organisation (must match)")],
    metadata: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Metadata YAML/JSON")],
    as_user: Annotated[str | None, typer.Option("--as", help="Register on behalf of this custodian")] = None,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Validate a dataset against its metadata, encrypt it and add it to the catalog."""
    from enclave_api.services import datasets

    with opened(data_dir, database_url) as enclave, progress() as bar:
        task = bar.add_task(f"reading {file.name}", total=None)
        meta = parse_metadata(metadata.read_bytes())
        if meta.id != dataset_id or meta.custodian_org != custodian_org:
            err.print("[red]--id and --custodian-org must match the metadata's id and custodian_org")
            raise typer.Exit(2)
        principal = _cli_principal(enclave, as_user, meta.custodian_org)
        bar.update(task, description=f"validating and encrypting {file.name}")
        dataset = datasets.register_dataset(enclave, principal, meta, file.read_bytes(), file.name)
        bar.update(task, description=f"registered {dataset.id}", completed=1, total=1)
    out.print(f"dataset {dataset.id} registered: {dataset.row_count} rows, tier {dataset.tier}")


def _cli_principal(enclave: Enclave, user_id: str | None, org_id: str) -> Principal:
    """The custodian the operator acts for: ``--as`` or the organisation's only custodian."""
    from sqlalchemy import select

    from enclave_api.models import User, UserRole

    with enclave.read() as session:
        if user_id is None:
            candidates = list(
                session.scalars(
                    select(User).join(UserRole).where(User.org_id == org_id, UserRole.role == Role.CUSTODIAN)
                )
            )
            if len(candidates) != 1:
                err.print(f"[red]say which custodian of {org_id} registers it with --as")
                raise typer.Exit(2)
            user = candidates[0]
        else:
            found = session.get(User, user_id)
            if found is None:
                err.print(f"[red]no user {user_id}")
                raise typer.Exit(2)
            user = found
    return Principal.local(user)


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = Path(".enclave"), database_url: DatabaseUrl = None) -> None:
    """Rotate the dataset key-encryption key: re-wrap every data key, leave data untouched."""
    from enclave_api.services import datasets

    with opened(data_dir, database_url) as enclave:
        kek_id, count = datasets.rotate_kek(enclave, cli_actor())
    out.print(f"new key-encryption key {kek_id}; {count} data keys re-wrapped")


@demo_app.command("seed")
def demo_seed(
    patients: Annotated[
        int | None, typer.Option(help="Patients per hospital registry (default: full size)")
    ] = None,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create the demo world and write demo-tokens.json and demo-logins.json (0600)."""
    from enclave_api.demo.seed import AlreadySeeded, seed_demo

    with opened(data_dir, database_url) as enclave, progress() as bar:
        task = bar.add_task("seeding", total=None)
        try:
            result = seed_demo(
                enclave,
                cli_actor(),
                patients,
                step=lambda msg: bar.update(task, description=f"seeding: {msg}"),
            )
        except AlreadySeeded as exc:
            out.print(str(exc))
            return
        bar.update(task, description="seeded", completed=1, total=1)
    out.print(
        f"demo world seeded: project {result['project']}, grant {result['grant']}, "
        f"pending request {result['pending_request']}"
    )
    out.print(f"tokens: {data_dir / 'demo-tokens.json'}  logins: {data_dir / 'demo-logins.json'}")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None, typer.Option(help="Verify this JSONL export offline instead of the database")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key (default: DATA_DIR/audit-public-key.pem)")
    ] = None,
    full: Annotated[bool, typer.Option(help="Also re-check every event checkpoints attest")] = False,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute the log: chain, Merkle roots and every checkpoint signature.

    Exit 0 intact, 1 tampered (the first bad index is printed), 2 unusable input.
    """
    from audit.store import tree_size, verify_database
    from audit.verify import UnusableInput, load_public_key, verify_export
    from enclave_api.secret_store import public_key_path

    key_path = public_key or public_key_path(make_settings(data_dir, database_url))
    try:
        key = load_public_key(key_path)
        if export is not None:
            if not export.is_file():
                raise UnusableInput(f"cannot read export {export}")
            with progress() as bar:
                bar.add_task(f"verifying {export.name}", total=None)
                result = verify_export(export, key, full=full)
        else:
            with opened(data_dir, database_url) as enclave, enclave.read() as session, progress() as bar:
                task = bar.add_task("verifying the audit log", total=tree_size(session))
                result = verify_database(
                    session, key, enclave.sink, lambda n: bar.update(task, completed=n), full=full
                )
    except UnusableInput as exc:
        err.print(f"[red]unusable input:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ValueError as exc:  # an unreadable checkpoint sink file
        err.print(f"[red]unusable input:[/red] {exc}")
        raise typer.Exit(2) from exc
    if result.ok:
        out.print(f"intact: {result.events} events, {result.checkpoints} checkpoints verified")
        return
    out.print(f"TAMPERED at index {result.first_bad_index}: {result.reason}")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    format: Annotated[ExportFormat, typer.Option("--format", help="jsonl (verifiable) or csv")] = (
        ExportFormat.JSONL
    ),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout)")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only events at or after this time (CSV only)")
    ] = None,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Export events. The JSONL export, with the public key, verifies offline."""
    from audit.canonical import rfc3339_utc
    from audit.store import all_checkpoints, iter_event_bytes, tree_size
    from audit.verify import csv_lines, write_export

    if since is not None and format is ExportFormat.JSONL:
        err.print("[red]--since applies to CSV; a verifiable JSONL export always holds the whole log")
        raise typer.Exit(2)
    cutoff = rfc3339_utc(since if since.tzinfo else since.replace(tzinfo=UTC)) if since else None
    target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        with opened(data_dir, database_url) as enclave, enclave.read() as session, progress() as bar:
            task = bar.add_task("exporting", total=tree_size(session))

            def events() -> Iterator[bytes]:
                done = 0
                for part in iter_event_bytes(session):
                    for _index, canonical, _leaf in part:
                        yield canonical
                    done += len(part)
                    bar.update(task, completed=done)

            if format is ExportFormat.JSONL:
                write_export(target, events(), all_checkpoints(session, enclave.sink))
            else:
                target.writelines(csv_lines(events(), since=cutoff))
    finally:
        target.flush()
        if output:
            target.close()


@audit_app.command("checkpoint")
def audit_checkpoint(data_dir: DataDir = Path(".enclave"), database_url: DatabaseUrl = None) -> None:
    """Sign a checkpoint of the log now, if it grew since the last one, and publish it to the sink.

    Prints the new checkpoint as JSON (nothing when the latest one already covers the log). The
    cluster runs this as a CronJob, so checkpoints are published while the API is idle or down.
    Exit 0; 2 on a configuration problem.
    """
    from audit.store import tree_size

    with opened(data_dir, database_url) as enclave:
        signed = enclave.checkpoint_now()
        if signed is None:
            with enclave.read() as session:
                size = tree_size(session)
            err.print(f"up to date: the latest checkpoint covers all {size} events")
            return
    err.print(f"signed and published a checkpoint of {signed.tree_size} events")
    print(json.dumps(signed.to_dict(), sort_keys=True))


@audit_app.command("prove")
def audit_prove(
    index: int,
    tree_size_: Annotated[
        int | None, typer.Option("--tree-size", help="Default: the latest checkpoint")
    ] = None,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Print an inclusion proof for event INDEX against a signed checkpoint (JSON)."""
    from audit import merkle
    from audit.store import DbNodeReader, checkpoint_at, latest_checkpoint

    with opened(data_dir, database_url) as enclave:
        enclave.checkpoint_now()
        with enclave.read() as session:
            signed = checkpoint_at(session, tree_size_) if tree_size_ else latest_checkpoint(session)
            if signed is None:
                err.print("[red]no signed checkpoint of that size")
                raise typer.Exit(2)
            if not 0 <= index < signed.tree_size:
                err.print(f"[red]index must be between 0 and {signed.tree_size - 1}")
                raise typer.Exit(2)
            reader = DbNodeReader(session)
            path = merkle.inclusion_proof(index, signed.tree_size, reader)
            leaf = reader.get_nodes([(0, index)])[(0, index)]
    root = bytes.fromhex(signed.root_hash)
    if not merkle.verify_inclusion(leaf, index, signed.tree_size, path, root):
        err.print("[red]the stored tree does not prove this event against its checkpoint (tampering?)")
        raise typer.Exit(1)
    proof = {
        "index": index,
        "tree_size": signed.tree_size,
        "leaf_hash": leaf.hex(),
        "root_hash": signed.root_hash,
        "path": [p.hex() for p in path],
        "checkpoint": signed.to_checkpoint().to_dict(),
    }
    print(json.dumps(proof, indent=2))


@pii_app.command("scan")
def pii_scan(
    files: Annotated[list[Path], typer.Argument(help="Files to scan (any type the airlock accepts)")],
    format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    deny_list: Annotated[
        Path | None, typer.Option(help='JSON {"kind": ["value", ...]} of known identifiers to look for')
    ] = None,
    mrn_pattern: Annotated[
        list[str] | None, typer.Option(help="Regular expression of a record-number scheme (repeatable)")
    ] = None,
    ner: Annotated[bool, typer.Option(help="Also look for names in English prose (spaCy NER)")] = False,
) -> None:
    """Run the egress PII scanner on files: exit 0 clean, 3 findings, 2 unusable input."""
    from privacy.egress.runner import scan_pii
    from privacy.pii import DenyList, PiiScanner

    if format not in ("text", "json"):
        err.print("[red]--format must be text or json[/red]")
        raise typer.Exit(2)
    try:
        values = json.loads(deny_list.read_bytes()) if deny_list is not None else {}
        if not isinstance(values, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in values.values()
        ):
            raise ValueError('the deny-list must be a JSON object {"kind": ["value", ...]}')
        scanner = PiiScanner(
            deny_list=DenyList.build(values) if values else None,
            mrn_patterns=tuple(mrn_pattern or ()),
            ner=ner,
        )
        reports = [scan_pii(path.name, path.read_bytes(), scanner) for path in files]
    except (OSError, ValueError) as exc:
        err.print(f"[red]unusable input:[/red] {exc}")
        raise typer.Exit(2) from exc
    findings = [f for report in reports for f in report.findings if f.severity != "info"]
    if format == "json":
        print(
            json.dumps(
                {"files": [r.to_dict() for r in reports], "findings": len(findings)}, ensure_ascii=False
            )
        )
    else:
        for finding in findings:
            print(
                f"{finding.file}: {finding.location}: {finding.rule} ({finding.severity}) {finding.message}"
            )
        print(f"{len(findings)} finding(s) in {len(reports)} file(s)")
    raise typer.Exit(3 if findings else 0)


def _serve(settings: Settings, hub: HubLayout | None) -> None:
    import uvicorn

    if settings.polars_streaming:
        # Read by Polars, and by the Polars inside OpenDP, at every collect: set before any query.
        os.environ.setdefault(POLARS_STREAMING_VARIABLE, "1")

    from enclave_api.api.app import create_app

    base = f"http://{settings.host}:{settings.port}"
    hub_process = _start_hub(settings, hub) if hub is not None else None
    if hub_process is not None:
        token = SecretStr(hub_process.service_token)
        settings = settings.model_copy(
            update={"hub_api_url": hub_process.layout.hub_api_url, "hub_api_token": token}
        )
    print(f"API: {base}", flush=True)
    if hub_process is not None:
        # Through the hub's proxy the portal shares the hub's login (same site, the hub's OAuth).
        portal = f"{hub_process.layout.bind_url}{settings.hub_service_prefix.rstrip('/')}/portal/"
        print(f"Portal: {portal}", flush=True)
        print(f"Hub: {hub_process.layout.bind_url}", flush=True)
    else:
        print(f"Portal: {base}/portal/", flush=True)
    _print_demo_logins(settings.data_dir)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        if hub_process is not None:
            hub_process.stop()
            with opened(settings.data_dir, settings.database_url) as enclave, enclave.write() as session:
                sessions.end_all(enclave, session, sessions.EndReason.STOPPED)


POLARS_STREAMING_VARIABLE = "POLARS_AUTO_NEW_STREAMING"


def _print_demo_logins(data_dir: Path) -> None:
    """The generated demo accounts, so a newcomer can log in as each role (demo world only)."""
    logins_file = data_dir / "demo-logins.json"
    if not logins_file.is_file():
        return
    try:
        logins = json.loads(logins_file.read_text())
    except (OSError, ValueError):
        return
    print(f"Demo logins ({logins_file}):", flush=True)
    for role, login in logins.items():
        print(f"  {role:<12} {login['username']:<14} {login['password']}", flush=True)


def _start_hub(settings: Settings, layout: HubLayout) -> HubProcess | None:
    """Start JupyterHub with sandboxed sessions, or say plainly why notebooks are off."""
    reason = unavailable_reason(layout)
    if reason is not None:
        print(f"Hub: off ({reason}; no unsandboxed notebook server is ever started)", flush=True)
        return None
    with opened(settings.data_dir, settings.database_url) as enclave, enclave.write() as session:
        # Sandboxes do not outlive their hub: sessions still open belonged to a hub that is gone.
        sessions.end_all(enclave, session, sessions.EndReason.ENCLAVE_RESTARTED)
        hub_token = sessions.issue_hub_credential(enclave, session)
    process = HubProcess(layout, hub_token)
    try:
        process.start()
    except RuntimeError as exc:
        print(f"Hub: off (JupyterHub failed to start; log in {layout.log_file})", flush=True)
        err.print(str(exc))
        return None
    return process


@app.command("up")
def up(
    no_hub: Annotated[bool, typer.Option("--no-hub", help="Do not start JupyterHub")] = False,
    host: Annotated[str, typer.Option(help="Bind address of the API and the hub")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8400,
    hub_port: Annotated[int, typer.Option(help="Port researchers open JupyterHub on")] = 8000,
    hub_api_port: Annotated[int, typer.Option(help="Port of the hub's own API on 127.0.0.1")] = 8081,
    proxy_api_port: Annotated[int, typer.Option(help="Port of the proxy's API on 127.0.0.1")] = 8001,
    session_prefix: Annotated[
        str, typer.Option(help="Name prefix of session namespaces and cgroups (one hub per prefix)")
    ] = "encl",
    homes: Annotated[Path, typer.Option(help="Directory of the researchers' session homes")] = Path(
        "/var/lib/enclave/homes"
    ),
    runtime: Annotated[
        Path, typer.Option(envvar="ENCLAVE_RUNTIME_DIR", help="Session runtime (scripts/build-runtime.sh)")
    ] = Path("/opt/enclave-runtime"),
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run everything of the embedded default: API, and JupyterHub with sandboxed sessions when this
    machine can run them (root, bubblewrap, nftables, the session runtime); never an unsandboxed one."""
    settings = make_settings(data_dir, database_url, host=host, port=port)
    layout = None
    if not no_hub:
        layout = HubLayout(
            state_dir=(data_dir / "hub").resolve(),
            proxy_command=find_proxy() or PROXY_NAME,
            bind_url=f"http://{host}:{hub_port}",
            hub_port=hub_api_port,
            proxy_api_port=proxy_api_port,
            api_port=port,
            name_prefix=session_prefix,
            runtime_dir=str(runtime),
            home_root=str(homes),
        )
    else:
        print("Hub: off (--no-hub)", flush=True)
    _serve(settings, layout)


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8400,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run the API (and portal) only."""
    _serve(make_settings(data_dir, database_url, host=host, port=port), hub=None)


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        sys.exit(2)

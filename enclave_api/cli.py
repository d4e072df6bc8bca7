"""The ``enclave`` command line (Typer).

Every command takes ``--data-dir`` (env ``ENCLAVE_DATA_DIR``, default ``.enclave``) and
``--database-url`` (env ``ENCLAVE_DATABASE_URL``, default SQLite in the data dir) after its own name.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from enclave_api.context import Enclave
from enclave_api.errors import ConfigurationError, EnclaveError
from enclave_api.metadata import parse_metadata
from enclave_api.roles import Role
from enclave_api.services.identity import Principal
from enclave_api.settings import Settings

app = typer.Typer(help="Secure data enclave: run the service and administer it.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets.", no_args_is_help=True)
keys_app = typer.Typer(help="Key management.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo world.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
for sub, name in (
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


def _serve(settings: Settings, hub: bool) -> None:
    import uvicorn

    from enclave_api.api.app import create_app

    base = f"http://{settings.host}:{settings.port}"
    print(f"API: {base}", flush=True)
    print(f"Portal: {base}/portal (not built yet: the portal arrives with its own issue)", flush=True)
    if hub:
        print("Hub: off (sandboxed notebooks are not built yet; no unsandboxed server is started)")
    else:
        print("Hub: off (--no-hub)", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )


@app.command("up")
def up(
    no_hub: Annotated[bool, typer.Option("--no-hub", help="Do not start JupyterHub")] = False,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8400,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run everything of the embedded default (API and portal; the hub when available)."""
    _serve(make_settings(data_dir, database_url, host=host, port=port), hub=not no_hub)


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8400,
    data_dir: DataDir = Path(".enclave"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run the API (and portal) only."""
    _serve(make_settings(data_dir, database_url, host=host, port=port), hub=False)


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        sys.exit(2)

"""``enclave demo seed``: the demo world of DESIGN.md §5.

Organisations, users of every role with generated passwords and tokens, the real WDBC data and the
three synthetic hospital registries, one project with an approved grant and one pending request.
Logins and tokens are written to ``demo-logins.json`` and ``demo-tokens.json`` (0600).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from enclave_api.context import Enclave
from enclave_api.demo.synthetic import HOSPITALS, generate_registry, registry_metadata
from enclave_api.demo.wdbc import load_wdbc, wdbc_metadata
from enclave_api.fsutil import write_private_file
from enclave_api.metadata import parse_metadata
from enclave_api.models import Organisation, User
from enclave_api.roles import Role
from enclave_api.services import access, datasets, identity, projects

PHARMA = ("aster-pharma", "Aster Pharma", "pharma")
OVERSIGHT = ("data-oversight-board", "Clinical Data Oversight Board", "oversight")
OPERATOR = ("enclave-operator", "Enclave Operations", "operator")


@dataclass(frozen=True)
class DemoUser:
    role_key: str  # key in demo-tokens.json / demo-logins.json
    user_id: str
    name: str
    org_id: str
    roles: tuple[Role, ...]


DEMO_USERS = (
    DemoUser("researcher", "minji.park", "Park Minji", PHARMA[0], (Role.RESEARCHER,)),
    DemoUser("custodian", "jiho.kim", "Kim Jiho", HOSPITALS[0].org_id, (Role.CUSTODIAN,)),
    # Hanbit's registry needs two independent egress reviews.
    DemoUser("custodian1b", "eunji.song", "Song Eunji", HOSPITALS[0].org_id, (Role.CUSTODIAN,)),
    DemoUser("custodian2", "seoyeon.lee", "Lee Seoyeon", HOSPITALS[1].org_id, (Role.CUSTODIAN,)),
    DemoUser("custodian3", "hyunwoo.choi", "Choi Hyunwoo", HOSPITALS[2].org_id, (Role.CUSTODIAN,)),
    DemoUser("auditor", "auditor.han", "Han Auditor", OVERSIGHT[0], (Role.AUDITOR,)),
    DemoUser("admin", "admin", "Enclave Admin", OPERATOR[0], (Role.ADMIN,)),
)


class AlreadySeeded(Exception):
    pass


def seed_demo(
    ctx: Enclave,
    actor: str,
    patients: int | None = None,
    step: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Create the demo world; ``patients`` overrides each registry's size (tests use small ones)."""
    with ctx.read() as session:
        if session.get(Organisation, PHARMA[0]) is not None:
            raise AlreadySeeded("the demo world is already seeded in this data directory")
    step("organisations and users")
    tokens: dict[str, str] = {}
    logins: dict[str, dict[str, str]] = {}
    with ctx.write() as session:
        orgs = [(h.org_id, h.name, "hospital") for h in HOSPITALS] + [PHARMA, OVERSIGHT, OPERATOR]
        for org_id, name, kind in orgs:
            identity.create_org(ctx, session, actor, org_id, name, kind)
        session.flush()
        for demo in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            identity.create_user(
                ctx,
                session,
                actor,
                demo.user_id,
                demo.name,
                demo.org_id,
                list(demo.roles),
                password,
            )
            session.flush()
            issued = identity.issue_token(ctx, session, actor, demo.user_id, name="demo", days=90)
            tokens[demo.role_key] = issued.token
            logins[demo.role_key] = {"username": demo.user_id, "password": password}
    custodians: dict[str, str] = {}
    for demo in DEMO_USERS:
        if Role.CUSTODIAN in demo.roles:
            custodians.setdefault(demo.org_id, demo.user_id)  # the first custodian registers

    def as_user(user_id: str) -> identity.Principal:
        with ctx.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise LookupError(user_id)
            return identity.Principal.local(user)

    step("dataset wdbc")
    datasets.register_dataset(
        ctx, as_user(custodians[HOSPITALS[0].org_id]), parse_metadata(wdbc_metadata()), load_wdbc()
    )
    for hospital in HOSPITALS:
        step(f"dataset {hospital.dataset_id}")
        table = generate_registry(hospital, n_patients=patients)
        meta = parse_metadata(registry_metadata(hospital))
        datasets.register_dataset(ctx, as_user(custodians[hospital.org_id]), meta, table)

    step("project, grant and pending request")
    researcher = as_user("minji.park")
    with ctx.write() as session:
        project = projects.create_project(
            ctx,
            session,
            researcher,
            "HER2-positive outcomes across hospitals",
            "Compare survival of HER2-positive early breast cancer by treatment across hospitals.",
        )
        session.flush()
        approved = access.create_request(
            ctx, session, researcher, project.id, "wdbc",
            "Feature screening for malignancy models.", 3.0, 1e-6, 90, True,
        )  # fmt: skip
        session.flush()
        access.decide(
            ctx, session, as_user(custodians[HOSPITALS[0].org_id]), approved.id, "approve",
            "Approved for the stated purpose.",
        )  # fmt: skip
        pending = access.create_request(
            ctx, session, researcher, project.id, HOSPITALS[1].dataset_id,
            "Survival by HER2 status and treatment.", 2.0, 1e-6, 60, True,
        )  # fmt: skip
    write_private_file(ctx.data_dir / "demo-tokens.json", json.dumps(tokens, indent=2).encode())
    write_private_file(ctx.data_dir / "demo-logins.json", json.dumps(logins, indent=2).encode())
    return {
        "project": project.id,
        "grant": approved.grant_id,
        "pending_request": pending.id,
        "tokens": tokens,
    }

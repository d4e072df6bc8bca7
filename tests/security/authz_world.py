"""The world of the authorisation matrix (``test_authz_matrix.py``): callers, objects, requests.

Callers are the eight roles of :data:`ROLES`. Every object-addressed operation is tried on an object
the caller owns (``own``), one of another user of the caller's organisation (``same_org``), one of
another organisation (``other_org``) and an id that does not exist (``none``). What "owning" means
depends on who asks (:func:`perspective`): a researcher owns their projects, requests, grants,
releases, egress requests and sessions; a custodian "owns" what concerns a dataset they registered
(``same_org``: a dataset a colleague of the same hospital registered); auditors, admins, the hub and
anonymous callers own no research object, so only ``other_org`` and ``none`` exist for them.

The world (:func:`build_world`), on top of the seeded demo:

=============  ====================================  =========================================
who            organisation                          owns
=============  ====================================  =========================================
minji.park     Aster Pharma (demo researcher)        demo project, grant on wdbc, pending
                                                     request on dasom_registry, a release, a
                                                     released egress request, a session
jisoo.yoon     Aster Pharma (same org)               project with a grant on hanbit_cohort,
                                                     pending request on hanbit_registry, ...
lukas.berg     Nordlys Bio (another pharma)          projects with grants on dasom_registry and
                                                     dasom_cohort, pending requests, ...
eunji.song     Hanbit (second custodian)             registered hanbit_cohort
minho.jang     Dasom (second custodian)              registered dasom_cohort
=============  ====================================  =========================================

Refusals are checked on these shared objects. A case expected to succeed on an operation that
changes state gets an object made for it alone (:attr:`Operation.fresh`), so that no case spoils
another; the shared objects only change if the code wrongly lets a refused call through.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.limits import AbuseLimits
from enclave_api.roles import Role
from enclave_api.services import identity, sessions
from privacy.egress import CheckWorker
from tests.conftest import bearer, seeded_copy, session_token

OWN, SAME_ORG, OTHER_ORG, NONE = "own", "same_org", "other_org", "none"
NO_OBJECT = "-"  # operations that address no object
ROLES = ("anonymous", "researcher", "session", "custodian", "custodian2", "auditor", "admin", "hub")

ALL_FOUR = (OWN, SAME_ORG, OTHER_ORG, NONE)
STRANGER = (OTHER_ORG, NONE)
NO_SAME = (OWN, OTHER_ORG, NONE)

FILE_NAME = "notes.txt"
FILE_BODY = b"The aggregate results are described in the consortium report.\n"
COUNT = {"aggregates": [{"fn": "count", "as": "n"}]}
SMALL_EPSILON = 0.05


MINJI, JISOO, LUKAS, EUNJI, MINHO, HUB = (
    "minji.park",
    "jisoo.yoon",
    "lukas.berg",
    "eunji.song",
    "minho.jang",
    "jupyterhub",
)
OTHER_PHARMA = "nordlys-bio"
#: Who decides requests and reviews egress for each dataset (role key or user id in World.tokens).
CUSTODIAN_OF = {
    "wdbc": "custodian",
    "hanbit_registry": "custodian",
    "hanbit_cohort": EUNJI,
    "dasom_registry": "custodian2",
    "dasom_cohort": MINHO,
    "mirae_registry": "custodian3",
}


class Kind(StrEnum):
    """What an operation's object is (in the path, or named in the body)."""

    DATASET = "dataset"
    PROJECT = "project"
    ACCESS_REQUEST = "access_request"
    GRANT = "grant"
    RELEASE = "release"
    EGRESS = "egress"
    SESSION = "session"
    USER = "user"
    ORG = "org"


MISSING = {
    Kind.DATASET: "no_such_dataset",
    Kind.PROJECT: "p-000000000000",
    Kind.ACCESS_REQUEST: "ar-000000000000",
    Kind.GRANT: "g-000000000000",
    Kind.RELEASE: "rel-000000000000",
    Kind.EGRESS: "eg-000000000000",
    Kind.SESSION: "ns-000000000000",
    Kind.USER: "no.such.user",
    Kind.ORG: "no-such-org",
}

#: Objects that belong to a dataset, and so to its custodians as well as to the researcher.
DATASET_SIDE = frozenset({Kind.DATASET, Kind.ACCESS_REQUEST, Kind.GRANT, Kind.RELEASE, Kind.EGRESS})

#: Which ownership cases exist, per kind and perspective.
OWNERSHIPS: dict[Kind, dict[str, tuple[str, ...]]] = {
    kind: {"researcher": ALL_FOUR, "custodian": ALL_FOUR, "custodian2": ALL_FOUR, "outsider": STRANGER}
    for kind in DATASET_SIDE
} | {
    Kind.PROJECT: {"researcher": ALL_FOUR, "outsider": STRANGER},
    Kind.SESSION: {"researcher": ALL_FOUR, "outsider": STRANGER},
    Kind.USER: {
        "researcher": ALL_FOUR,
        "custodian": ALL_FOUR,
        "custodian2": ALL_FOUR,
        "auditor": NO_SAME,  # nobody else works for the oversight board
        "admin": ALL_FOUR,
        "hub": ALL_FOUR,
        "outsider": STRANGER,
    },
    Kind.ORG: {
        "researcher": NO_SAME,  # an organisation is its own and only member
        "custodian": NO_SAME,
        "custodian2": NO_SAME,
        "auditor": NO_SAME,
        "hub": NO_SAME,
        "outsider": STRANGER,
    },
}


def perspective(kind: Kind | None, role: str) -> str:
    """Whose relation to an object of ``kind`` decides its ownership case for ``role``."""
    if kind is None or role == "anonymous":
        return "outsider"
    who = "researcher" if role == "session" else role
    if kind is Kind.USER:
        return who
    if kind is Kind.ORG:
        return "outsider" if who == "admin" else who
    if who == "researcher" or (who in ("custodian", "custodian2") and kind in DATASET_SIDE):
        return who
    return "outsider"


def ownerships(kind: Kind | None, role: str) -> tuple[str, ...]:
    return (NO_OBJECT,) if kind is None else OWNERSHIPS[kind][perspective(kind, role)]


@dataclass(frozen=True)
class Call:
    """One HTTP request (the method comes from the operation)."""

    path: str
    json: Any = None
    data: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes]]] | None = None
    params: dict[str, Any] | None = None


@dataclass
class World:
    """A seeded enclave with the objects of every ownership case, and a client over its API."""

    enclave: Enclave
    client: TestClient
    tokens: dict[str, str]  # role or user id → bearer token
    logins: dict[str, dict[str, str]]
    #: kind → perspective → ownership → object id (or user/org id)
    objects: dict[Kind, dict[str, dict[str, str]]] = field(default_factory=dict)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial)}"

    def target(self, kind: Kind, role: str, ownership: str) -> str:
        return self.objects[kind][perspective(kind, role)][ownership]

    def call(self, method: str, token: str | None, call: Call) -> Any:
        """Send ``call`` with ``token`` (None: no credential); the response."""
        return self.client.request(
            method,
            call.path,
            json=call.json,
            data=call.data,
            files=call.files,
            params=call.params,
            headers=bearer(token) if token is not None else {},
        )

    def ok(self, method: str, who: str, call: Call, status: int = 200) -> Any:
        """Set-up call as ``who`` (role or user id) that must succeed; its JSON body."""
        response = self.call(method, self.tokens[who], call)
        assert response.status_code == status, f"set-up {method} {call.path} as {who}: {response.text}"
        return response.json()

    # --- factories (set-up, and fresh objects for cases that change state) -------------------------

    def project(self, owner: str) -> str:
        body = {"title": "Authorisation matrix", "purpose": "Who may do what"}
        return str(self.ok("POST", owner, Call("/v1/projects", json=body), 201)["id"])

    def pending_request(self, requester: str, project: str, dataset: str) -> str:
        body = {
            "project_id": project,
            "dataset_id": dataset,
            "purpose": "Authorisation matrix",
            "epsilon": 1.0,
            "delta": 1e-6,
            "days": 30,
            "dua_accepted": True,
        }
        return str(self.ok("POST", requester, Call("/v1/access-requests", json=body), 201)["id"])

    def grant(self, requester: str, project: str, dataset: str) -> str:
        request = self.pending_request(requester, project, dataset)
        decision = {"decision": "approve", "reason": "ok"}
        path = f"/v1/access-requests/{request}/decision"
        return str(self.ok("POST", CUSTODIAN_OF[dataset], Call(path, json=decision))["grant_id"])

    def session(self, user: str) -> tuple[str, str]:
        """A new notebook session of ``user`` (opened by the hub, own server name): id and token."""
        body = {"user": user, "server": self.unique("matrix-")}
        started = self.ok("POST", "hub", Call("/v1/sessions", json=body), 201)
        return str(started["id"]), str(started["token"])

    def release(self, who: str, dataset: str) -> str:
        body = {"dataset_id": dataset, "epsilon": SMALL_EPSILON, "query": COUNT}
        return str(self.ok("POST", who, Call("/v1/queries", json=body))["release_id"])

    def egress(self, requester: str, project: str) -> str:
        """An egress request of ``requester`` in ``project``, in review (submitted from a session)."""
        token = self.tokens["session"] if requester == MINJI else self.session(requester)[1]
        response = self.call("POST", token, egress_call(project))
        assert response.status_code == 201, f"set-up egress of {requester}: {response.text}"
        body = response.json()
        assert body["status"] == "in_review", json.dumps(body["checks"])
        return str(body["id"])

    def review(self, request: str, reviewer: str, decision: str = "approve") -> str:
        path = f"/v1/egress-requests/{request}/reviews"
        body = {"decision": decision, "comment": "Authorisation matrix"}
        return str(self.ok("POST", reviewer, Call(path, json=body))["status"])

    def researcher_for(self, view: str, ownership: str) -> str:
        """The researcher whose object has this ownership case (for dataset-side views: a stranger)."""
        if view == "researcher":
            return {OWN: MINJI, SAME_ORG: JISOO, OTHER_ORG: LUKAS}[ownership]
        return LUKAS

    def fresh_pending(self, view: str, ownership: str) -> str:
        researcher = self.researcher_for(view, ownership)
        dataset = "mirae_registry" if view == "researcher" else self.objects[Kind.DATASET][view][ownership]
        return self.pending_request(researcher, self.project(researcher), dataset)

    def fresh_grant(self, view: str, ownership: str) -> str:
        # Never in a project of minji: revoking it would end the session whose credential is a role.
        dataset = self.objects[Kind.DATASET][view][ownership]
        return self.grant(LUKAS, self.project(LUKAS), dataset)

    def fresh_egress(self, view: str, ownership: str) -> str:
        if view == "researcher":
            return self.egress(MINJI, self.objects[Kind.PROJECT]["researcher"][OWN])
        project = self.project(LUKAS)
        self.grant(LUKAS, project, self.objects[Kind.DATASET][view][ownership])
        return self.egress(LUKAS, project)

    def fresh_changes_requested(self, view: str, ownership: str) -> str:
        """An egress request of minji's the custodian sent back for changes (resubmit cases)."""
        assert (view, ownership) == ("researcher", OWN), "only the requester resubmits"
        request = self.fresh_egress(view, ownership)
        assert self.review(request, "custodian", "changes_requested") == "changes_requested"
        return request


def egress_call(project: str, path: str = "/v1/egress-requests") -> Call:
    return Call(
        path,
        data={"justification": "Authorisation matrix", "project_id": project},
        files=[("files", (FILE_NAME, FILE_BODY))],
    )


def dataset_metadata(dataset_id: str, org: str) -> str:
    return json.dumps(
        {
            "id": dataset_id,
            "title": "Matrix cohort",
            "description": "A tiny cohort for the authorisation matrix",
            "custodian_org": org,
            "tier": "enclave",
            "max_rows_per_person": 1,
            "columns": [
                {"name": "mrn", "type": "str", "role": "direct_identifier", "on_release": "pseudonymise"},
                {"name": "age", "type": "int", "role": "quasi_identifier", "bounds": [18, 100]},
                {"name": "stage", "type": "category", "role": "sensitive", "categories": ["I", "II"]},
            ],
        }
    )


COHORT_CSV = b"mrn,age,stage\nMX001,54,II\nMX002,61,I\nMX003,47,II\n"


def register_call(dataset_id: str, org: str) -> Call:
    return Call(
        "/v1/datasets",
        data={"metadata": dataset_metadata(dataset_id, org)},
        files=[("file", (f"{dataset_id}.csv", COHORT_CSV))],
    )


# --- operations: how to call each one on a target ------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """How to call one documented operation on a target object (``None`` for no object)."""

    kind: Kind | None
    call: Callable[[World, str], Call]
    #: Makes an object of the given view and ownership for a case expected to succeed, when success
    #: changes state (the shared object would not be in the same state for the next case).
    fresh: Callable[[World, str, str], str] | None = None


def _fixed(path: str, **extra: Any) -> Callable[[World, str], Call]:
    return lambda _world, _target: Call(path, **extra)


def _at(template: str, **extra: Any) -> Callable[[World, str], Call]:
    return lambda _world, target: Call(template.format(target), **extra)


def _fresh_project(world: World, view: str, ownership: str) -> str:
    return world.project(world.researcher_for(view, ownership))


def _fresh_session(world: World, view: str, ownership: str) -> str:
    return world.session(world.researcher_for(view, ownership))[0]


def _register(world: World, org: str) -> Call:
    return register_call(world.unique("matrix_cohort_"), org)


def _new_member(world: World, project: str) -> Call:
    return Call(f"/v1/projects/{project}/members", json={"user_id": JISOO})


def _request_access(world: World, project: str) -> Call:
    body = {
        "project_id": project,
        "dataset_id": "mirae_registry",
        "purpose": "Authorisation matrix",
        "epsilon": 1.0,
        "delta": 0,
        "days": 30,
        "dua_accepted": True,
    }
    return Call("/v1/access-requests", json=body)


def _query(world: World, dataset: str) -> Call:
    return Call("/v1/queries", json={"dataset_id": dataset, "epsilon": SMALL_EPSILON, "query": COUNT})


def _hub_login(world: World, _target: str) -> Call:
    login = world.logins["researcher"]
    return Call("/v1/hub/login", json={"username": login["username"], "password": login["password"]})


def _start_session(world: World, user: str) -> Call:
    return Call("/v1/sessions", json={"user": user, "server": world.unique("matrix-")})


def _resubmit(world: World, request: str) -> Call:
    return Call(
        f"/v1/egress-requests/{request}/resubmit",
        data={"justification": "Authorisation matrix, second round"},
        files=[("files", (FILE_NAME, FILE_BODY + b"Revised.\n"))],
    )


APPROVE = {"decision": "approve", "reason": "Authorisation matrix"}
REVIEW = {"decision": "approve", "comment": "Authorisation matrix"}

OPERATIONS: dict[str, Operation] = {
    "GET /healthz": Operation(None, _fixed("/healthz")),
    "GET /v1/me": Operation(None, _fixed("/v1/me")),
    "GET /v1/datasets": Operation(None, _fixed("/v1/datasets")),
    "POST /v1/datasets": Operation(Kind.ORG, _register),
    "GET /v1/datasets/{dataset_id}": Operation(Kind.DATASET, _at("/v1/datasets/{}")),
    "GET /v1/datasets/{dataset_id}/records": Operation(Kind.DATASET, _at("/v1/datasets/{}/records")),
    "GET /v1/projects": Operation(None, _fixed("/v1/projects")),
    "POST /v1/projects": Operation(
        None, _fixed("/v1/projects", json={"title": "Authorisation matrix", "purpose": "Who may do what"})
    ),
    "GET /v1/projects/{project_id}": Operation(Kind.PROJECT, _at("/v1/projects/{}")),
    "POST /v1/projects/{project_id}/members": Operation(Kind.PROJECT, _new_member, _fresh_project),
    "GET /v1/access-requests": Operation(None, _fixed("/v1/access-requests")),
    "POST /v1/access-requests": Operation(Kind.PROJECT, _request_access, _fresh_project),
    "GET /v1/access-requests/{request_id}": Operation(Kind.ACCESS_REQUEST, _at("/v1/access-requests/{}")),
    "POST /v1/access-requests/{request_id}/decision": Operation(
        Kind.ACCESS_REQUEST,
        _at("/v1/access-requests/{}/decision", json=APPROVE),
        World.fresh_pending,
    ),
    "POST /v1/access-requests/{request_id}/withdraw": Operation(
        Kind.ACCESS_REQUEST, _at("/v1/access-requests/{}/withdraw"), World.fresh_pending
    ),
    "GET /v1/grants": Operation(None, _fixed("/v1/grants")),
    "POST /v1/grants/{grant_id}/revoke": Operation(
        Kind.GRANT, _at("/v1/grants/{}/revoke", json={"reason": "Authorisation matrix"}), World.fresh_grant
    ),
    "POST /v1/queries": Operation(Kind.DATASET, _query),
    "GET /v1/releases/{release_id}": Operation(Kind.RELEASE, _at("/v1/releases/{}")),
    "POST /v1/egress-requests": Operation(Kind.PROJECT, lambda _world, project: egress_call(project)),
    "GET /v1/egress-requests": Operation(None, _fixed("/v1/egress-requests")),
    "GET /v1/egress-requests/{request_id}": Operation(Kind.EGRESS, _at("/v1/egress-requests/{}")),
    "POST /v1/egress-requests/{request_id}/reviews": Operation(
        Kind.EGRESS, _at("/v1/egress-requests/{}/reviews", json=REVIEW), World.fresh_egress
    ),
    "POST /v1/egress-requests/{request_id}/resubmit": Operation(
        Kind.EGRESS, _resubmit, World.fresh_changes_requested
    ),
    "POST /v1/egress-requests/{request_id}/withdraw": Operation(
        Kind.EGRESS, _at("/v1/egress-requests/{}/withdraw"), World.fresh_egress
    ),
    "GET /v1/egress-requests/{request_id}/manifest": Operation(
        Kind.EGRESS, _at("/v1/egress-requests/{}/manifest")
    ),
    "GET /v1/egress-requests/{request_id}/files/{name}": Operation(
        Kind.EGRESS, _at("/v1/egress-requests/{}/files/" + FILE_NAME)
    ),
    "GET /v1/audit/events": Operation(None, _fixed("/v1/audit/events", params={"limit": 1})),
    "GET /v1/audit/checkpoint": Operation(None, _fixed("/v1/audit/checkpoint")),
    "GET /v1/audit/public-key": Operation(None, _fixed("/v1/audit/public-key")),
    "GET /v1/audit/proofs/inclusion": Operation(
        None, _fixed("/v1/audit/proofs/inclusion", params={"index": 0, "tree_size": 1})
    ),
    "GET /v1/audit/proofs/consistency": Operation(
        None, _fixed("/v1/audit/proofs/consistency", params={"first": 1, "second": 2})
    ),
    "POST /v1/hub/login": Operation(None, _hub_login),
    "GET /v1/hub/users/{user_id}": Operation(Kind.USER, _at("/v1/hub/users/{}")),
    "POST /v1/sessions": Operation(Kind.USER, _start_session),
    "GET /v1/sessions": Operation(None, _fixed("/v1/sessions")),
    "POST /v1/sessions/{session_id}/end": Operation(
        Kind.SESSION, _at("/v1/sessions/{}/end", json={"reason": "stopped"}), _fresh_session
    ),
}


# --- building the world ---------------------------------------------------------------------------


def _people(enclave: Enclave) -> dict[str, str]:
    """The users the demo lacks (a colleague of minji, a researcher elsewhere, a second Dasom
    custodian) and the hub's service account; their tokens."""
    issued = {}
    with enclave.write() as session:
        identity.create_org(enclave, session, "test", OTHER_PHARMA, "Nordlys Bio", "pharma")
        session.flush()
        for user_id, name, org, role in (
            (JISOO, "Yoon Jisoo", "aster-pharma", Role.RESEARCHER),
            (LUKAS, "Lukas Berg", OTHER_PHARMA, Role.RESEARCHER),
            (MINHO, "Jang Minho", "dasom-university-hospital", Role.CUSTODIAN),
        ):
            identity.create_user(enclave, session, "test", user_id, name, org, [role])
            session.flush()
            issued[user_id] = identity.issue_token(enclave, session, "test", user_id, name="matrix").token
    with enclave.write() as session:
        issued["hub"] = sessions.issue_hub_credential(enclave, session)
    return issued


def _only(items: list[dict[str, Any]], **match: str) -> str:
    found = [i["id"] for i in items if all(i[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, items)
    return str(found[0])


def build_world(enclave: Enclave) -> World:
    """The shared objects of every ownership case (see the module docstring)."""
    # Rate limits are not what this checks; the matrix makes more submissions than a person would.
    enclave.limits = AbuseLimits(
        enclave.settings.model_copy(
            update={"rate_limit_queries_per_minute": 10_000, "rate_limit_egress_per_hour": 10_000}
        )
    )
    tokens: dict[str, str] = json.loads((enclave.data_dir / "demo-tokens.json").read_text())
    logins = json.loads((enclave.data_dir / "demo-logins.json").read_text())
    tokens |= _people(enclave)
    tokens[EUNJI] = tokens["custodian1b"]
    tokens[MINJI] = tokens["researcher"]
    tokens["session"] = session_token(enclave, MINJI)
    world = World(enclave, TestClient(create_app(enclave=enclave)), tokens, logins)

    world.ok("POST", EUNJI, register_call("hanbit_cohort", "hanbit-cancer-center"), 201)
    world.ok("POST", MINHO, register_call("dasom_cohort", "dasom-university-hospital"), 201)

    # Projects and grants (minji's come from the demo: a grant on wdbc, a request on dasom_registry).
    p_minji = _only(world.ok("GET", MINJI, Call("/v1/projects")), owner=MINJI)
    g_minji = _only(world.ok("GET", MINJI, Call("/v1/grants")), dataset_id="wdbc")
    ar_minji = _only(world.ok("GET", MINJI, Call("/v1/access-requests")), status="pending")
    p_jisoo, p_lukas, p_lukas2 = world.project(JISOO), world.project(LUKAS), world.project(LUKAS)
    g_jisoo = world.grant(JISOO, p_jisoo, "hanbit_cohort")
    g_lukas = world.grant(LUKAS, p_lukas, "dasom_registry")
    g_lukas2 = world.grant(LUKAS, p_lukas2, "dasom_cohort")
    ar_jisoo = world.pending_request(JISOO, p_jisoo, "hanbit_registry")
    ar_lukas = world.pending_request(LUKAS, p_lukas, "hanbit_cohort")
    ar_lukas2 = world.pending_request(LUKAS, p_lukas, "dasom_cohort")

    rel_minji = world.release("session", "wdbc")
    rel_jisoo = world.release(JISOO, "hanbit_cohort")
    rel_lukas = world.release(LUKAS, "dasom_registry")
    rel_lukas2 = world.release(LUKAS, "dasom_cohort")

    egress = {}
    for requester, project, reviewer in (
        (MINJI, p_minji, "custodian"),
        (JISOO, p_jisoo, EUNJI),
        (LUKAS, p_lukas, "custodian2"),
        (LUKAS, p_lukas2, MINHO),
    ):
        request = world.egress(requester, project)
        assert world.review(request, reviewer) == "released"
        egress[project] = request

    ns_minji, ns_jisoo, ns_lukas = (world.session(user)[0] for user in (MINJI, JISOO, LUKAS))

    def views(
        researcher: tuple[str, str, str], custodian: tuple[str, str, str], custodian2: tuple[str, str, str]
    ) -> dict[str, tuple[str, str, str]]:
        return {"researcher": researcher, "custodian": custodian, "custodian2": custodian2}

    by_kind: dict[Kind, dict[str, tuple[str, str, str]]] = {
        Kind.DATASET: views(
            ("wdbc", "hanbit_cohort", "dasom_registry"),
            ("hanbit_registry", "hanbit_cohort", "dasom_registry"),
            ("dasom_registry", "dasom_cohort", "hanbit_registry"),
        ),
        Kind.ACCESS_REQUEST: views(
            (ar_minji, ar_jisoo, ar_lukas), (ar_jisoo, ar_lukas, ar_minji), (ar_minji, ar_lukas2, ar_jisoo)
        ),
        Kind.GRANT: views(
            (g_minji, g_jisoo, g_lukas), (g_minji, g_jisoo, g_lukas), (g_lukas, g_lukas2, g_minji)
        ),
        Kind.RELEASE: views(
            (rel_minji, rel_jisoo, rel_lukas),
            (rel_minji, rel_jisoo, rel_lukas),
            (rel_lukas, rel_lukas2, rel_minji),
        ),
        Kind.EGRESS: views(
            (egress[p_minji], egress[p_jisoo], egress[p_lukas]),
            (egress[p_minji], egress[p_jisoo], egress[p_lukas]),
            (egress[p_lukas], egress[p_lukas2], egress[p_minji]),
        ),
        Kind.PROJECT: {"researcher": (p_minji, p_jisoo, p_lukas)},
        Kind.SESSION: {"researcher": (ns_minji, ns_jisoo, ns_lukas)},
        Kind.USER: {
            "researcher": (MINJI, JISOO, LUKAS),
            "custodian": ("jiho.kim", EUNJI, MINJI),
            "custodian2": ("seoyeon.lee", MINHO, MINJI),
            "auditor": ("auditor.han", "", MINJI),
            "admin": ("admin", HUB, MINJI),
            "hub": (HUB, "admin", MINJI),
        },
        Kind.ORG: {
            "researcher": ("aster-pharma", "", "hanbit-cancer-center"),
            "custodian": ("hanbit-cancer-center", "", "dasom-university-hospital"),
            "custodian2": ("dasom-university-hospital", "", "hanbit-cancer-center"),
            "auditor": ("data-oversight-board", "", "hanbit-cancer-center"),
            "hub": ("enclave-operator", "", "hanbit-cancer-center"),
        },
    }
    for kind, table in by_kind.items():
        world.objects[kind] = {}
        for view, (own, same, other) in table.items():
            ids = {OWN: own, SAME_ORG: same, OTHER_ORG: other, NONE: MISSING[kind]}
            world.objects[kind][view] = {o: ids[o] for o in OWNERSHIPS[kind][view]}
        # Callers without a relation to research objects get another organisation's.
        stranger = table["researcher"][2] if "researcher" in table else "hanbit-cancer-center"
        world.objects[kind]["outsider"] = {OTHER_ORG: stranger, NONE: MISSING[kind]}
    return world


def world_fixture(
    request: pytest.FixtureRequest, tmp_path: Path, templates: Any, checks: CheckWorker
) -> Iterator[World]:
    """A world on a copy of the seeded demo of backend ``request.param``, closed afterwards; its
    egress checks run in ``checks`` (one worker process for every backend: starting one is slow)."""
    copy = seeded_copy(str(request.param), tmp_path, templates, request)
    enclave = next(copy)
    own_checks, enclave.egress_checks = enclave.egress_checks, checks
    try:
        yield build_world(enclave)
    finally:
        enclave.egress_checks = own_checks
        next(copy, None)

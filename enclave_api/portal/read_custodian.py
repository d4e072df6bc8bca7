"""Read-only facts the custodian's pages show that no service offers.

Each function is handed ids the caller already obtained through a service's visibility rules
(``access.list_requests``, ``access.list_grants``, ``egress.list_requests``/``egress.view``) and only
adds display facts about those objects: project titles, people's names, the budget spent over time,
whether the caller reviewed a request. Nothing here decides what a custodian may see.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave_api.models import AccessRequest, EgressRequest, EgressReview, Project, Release, User

#: Releases whose budget is spent: released, or failed after the reservation (noise may have been drawn).
SPENDING_STATUSES = ("released", "failed", "reserved")


@dataclass(frozen=True)
class ProjectFacts:
    id: str
    title: str
    purpose: str


def projects(session: Session, project_ids: Collection[str]) -> dict[str, ProjectFacts]:
    """Title and purpose of the projects behind requests or grants the caller already sees."""
    if not project_ids:
        return {}
    rows = session.scalars(select(Project).where(Project.id.in_(set(project_ids))))
    return {p.id: ProjectFacts(p.id, p.title, p.purpose) for p in rows}


def user_names(session: Session, user_ids: Collection[str]) -> dict[str, str]:
    """Display names of requesters and reviewers (staff of the enclave's organisations, not patients)."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(set(user_ids))))
    return {user_id: name for user_id, name in rows}


def budget_spending(session: Session, grant_ids: Collection[str]) -> dict[str, list[tuple[datetime, float]]]:
    """For each grant, the cumulative ε spent after each release that took budget, in time order."""
    spending: dict[str, list[tuple[datetime, float]]] = {grant_id: [] for grant_id in grant_ids}
    if not grant_ids:
        return spending
    rows = session.scalars(
        select(Release)
        .where(Release.grant_id.in_(set(grant_ids)), Release.status.in_(SPENDING_STATUSES))
        .order_by(Release.created_at, Release.id)
    )
    totals: dict[str, float] = {}
    events = sorted(
        ((release.released_at or release.created_at, release.grant_id, release.epsilon) for release in rows),
        key=lambda event: event[0],
    )
    for when, grant_id, epsilon in events:
        totals[grant_id] = totals.get(grant_id, 0.0) + epsilon
        spending[grant_id].append((when, totals[grant_id]))
    return spending


def reviewed_by(session: Session, requests: Iterable[EgressRequest], reviewer_id: str) -> set[str]:
    """Ids of those ``requests`` whose current round ``reviewer_id`` has already reviewed."""
    rounds = {request.id: request.round for request in requests}
    if not rounds:
        return set()
    rows = session.execute(
        select(EgressReview.request_id, EgressReview.round).where(
            EgressReview.request_id.in_(set(rounds)), EgressReview.reviewer_id == reviewer_id
        )
    )
    return {request_id for request_id, round_ in rows if rounds.get(request_id) == round_}


def week_start(when: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding ``when``."""
    moment = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def per_week(
    events: Iterable[tuple[datetime, str]], series: Sequence[str], now: datetime, weeks: int = 12
) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Count ``(when, series name)`` events per week over the last ``weeks`` weeks, for
    :func:`enclave_api.portal.plots.bars` (labels: the Mondays, ``MM-DD``)."""
    first = week_start(now) - timedelta(weeks=weeks - 1)
    counts = {name: [0] * weeks for name in series}
    for when, name in events:
        index = (week_start(when) - first).days // 7
        if name in counts and 0 <= index < weeks:
            counts[name][index] += 1
    labels = [(first + timedelta(weeks=i)).strftime("%m-%d") for i in range(weeks)]
    return labels, [(name, counts[name]) for name in series]


def access_decisions(requests: Iterable[AccessRequest]) -> list[tuple[datetime, str]]:
    """(decision time, ``approved``/``denied``) of the decided ``requests``."""
    return [
        (r.decided_at, r.status)
        for r in requests
        if r.decided_at is not None and r.status in ("approved", "denied")
    ]


def egress_outcomes(requests: Iterable[EgressRequest]) -> list[tuple[datetime, str]]:
    """(time, outcome) of egress requests that were released, rejected or sent back for changes."""
    outcomes = []
    for request in requests:
        if request.status == "released" and request.released_at is not None:
            outcomes.append((request.released_at, "released"))
        elif request.status in ("rejected", "changes_requested"):
            outcomes.append((request.updated_at, request.status.replace("_", " ")))
    return outcomes

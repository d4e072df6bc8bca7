"""Read-only views for the researcher's portal pages that no service offers.

Plain SQLAlchemy and plain Python, no FastAPI. Callers pass only objects the services already let
the user see (datasets of the public catalog, their own projects and grants); these helpers add
names, releases and search on top and never widen what is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave_api.models import Dataset, Organisation, ProjectMember, Release, User
from enclave_api.services.datasets import dataset_metadata

#: Columns named in a catalog row before "…" (the dataset page lists them all).
SUMMARY_COLUMNS = 8

TIER_EXPLAINED = {
    "enclave": (
        "Pseudonymised records inside your notebook session (direct identifiers removed or replaced "
        "by pseudonyms), plus differentially private queries. Records never leave the enclave: "
        "outputs go out only through the egress airlock."
    ),
    "query_only": (
        "Differentially private queries only: no record-level access, not even inside the enclave. "
        "Every answer costs privacy budget from your grant."
    ),
}

ROLE_EXPLAINED = {
    "direct_identifier": "Direct identifier: never reaches a notebook (removed or pseudonymised)",
    "quasi_identifier": "Quasi-identifier: may identify a person in combination with others",
    "sensitive": "Sensitive clinical attribute",
    "attribute": "Attribute",
}


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset as the catalog shows it: public metadata, its hospital, what matched a search."""

    dataset_id: str
    title: str
    description: str
    org_id: str
    org_name: str
    tier: str
    row_count: int
    max_rows_per_person: int
    columns: list[dict[str, Any]]
    matched_columns: list[str]

    @property
    def role_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for column in self.columns:
            counts[column["role"]] = counts.get(column["role"], 0) + 1
        return counts

    @property
    def column_names(self) -> list[str]:
        return [column["name"] for column in self.columns]


@dataclass(frozen=True)
class Member:
    user_id: str
    name: str
    org_name: str
    added_at: datetime


def organisation_names(session: Session) -> dict[str, str]:
    """Organisation id → display name (organisations are public: the catalog names its hospitals)."""
    return {org.id: org.name for org in session.scalars(select(Organisation))}


def catalog_entry(dataset: Dataset, org_names: Mapping[str, str]) -> CatalogEntry:
    """The public view of a dataset: exactly what ``GET /v1/datasets/{id}`` exposes, plus names."""
    meta = dataset_metadata(dataset).public()
    return CatalogEntry(
        dataset_id=dataset.id,
        title=dataset.title,
        description=dataset.description,
        org_id=dataset.custodian_org_id,
        org_name=org_names.get(dataset.custodian_org_id, dataset.custodian_org_id),
        tier=dataset.tier,
        row_count=dataset.row_count,
        max_rows_per_person=dataset.max_rows_per_person,
        columns=[{k: v for k, v in c.items() if k != "pattern"} for c in meta["columns"]],
        matched_columns=[],
    )


def search_catalog(
    entries: Iterable[CatalogEntry], q: str = "", hospital: str = "", tier: str = "", column: str = ""
) -> list[CatalogEntry]:
    """Entries matching every given filter, by hospital name then title.

    ``q`` matches (case-insensitively, as a substring) the title, the description, column names and
    column descriptions; ``column`` matches column names only; ``hospital`` and ``tier`` are exact.
    Each result names the columns that matched ``q`` or ``column``.
    """
    needle, column_needle = q.strip().casefold(), column.strip().casefold()
    found = []
    for entry in entries:
        if hospital and entry.org_id != hospital:
            continue
        if tier and entry.tier != tier:
            continue
        matched: list[str] = []
        if column_needle:
            matched = [c["name"] for c in entry.columns if column_needle in c["name"].casefold()]
            if not matched:
                continue
        if needle:
            by_column = [
                c["name"]
                for c in entry.columns
                if needle in c["name"].casefold() or needle in c.get("description", "").casefold()
            ]
            in_text = needle in entry.title.casefold() or needle in entry.description.casefold()
            if not (in_text or by_column):
                continue
            matched += [name for name in by_column if name not in matched]
        found.append(replace(entry, matched_columns=matched))
    return sorted(found, key=lambda e: (e.org_name.casefold(), e.title.casefold(), e.dataset_id))


def project_members(session: Session, project_id: str) -> list[Member]:
    """The members of a project (call only for a project the caller may see)."""
    rows = session.execute(
        select(User.id, User.name, Organisation.name, ProjectMember.added_at)
        .join(User, User.id == ProjectMember.user_id)
        .join(Organisation, Organisation.id == User.org_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(ProjectMember.added_at, User.id)
    )
    return [Member(user_id, name, org_name, added_at) for user_id, name, org_name, added_at in rows]


def grant_releases(session: Session, grant_ids: Sequence[str]) -> dict[str, list[Release]]:
    """Released DP results of each grant (call only with grants the caller may see), oldest first."""
    releases: dict[str, list[Release]] = {grant_id: [] for grant_id in grant_ids}
    if not grant_ids:
        return releases
    query = (
        select(Release)
        .where(Release.grant_id.in_(grant_ids), Release.status == "released")
        .order_by(Release.released_at, Release.id)
    )
    for release in session.scalars(query):
        releases[release.grant_id].append(release)
    return releases


def cumulative_epsilon(releases: Sequence[Release]) -> list[tuple[datetime, float]]:
    """(release time, ε spent so far) after each release, for a burn-down plot."""
    points, total = [], 0.0
    for release in releases:
        total += release.epsilon
        points.append((release.released_at or release.created_at, total))
    return points


def describe_query(stored: Mapping[str, Any]) -> str:
    """A short plain description of a stored DP query, e.g. ``count, mean(tumor_size_mm) by stage``."""
    spec = stored.get("query", stored)
    parts = []
    for aggregate in spec.get("aggregates", []):
        fn, column = aggregate.get("fn", "?"), aggregate.get("column")
        parts.append(f"{fn}({column})" if column else str(fn))
    text = ", ".join(parts) or "query"
    if spec.get("group_by"):
        text += " by " + ", ".join(spec["group_by"])
    filters = len(spec.get("filters", []))
    if filters:
        text += f"; {filters} filter{'s' if filters != 1 else ''}"
    return text

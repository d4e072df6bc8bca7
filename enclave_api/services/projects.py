"""Research projects: the unit that requests access and holds grants."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Forbidden, NotFound
from enclave_api.models import Project, ProjectMember, User
from enclave_api.roles import Role, new_id
from enclave_api.services.identity import Principal


def create_project(ctx: Enclave, session: Session, principal: Principal, title: str, purpose: str) -> Project:
    if not principal.has(Role.RESEARCHER):
        raise Forbidden("only researchers create projects")
    project = Project(
        id=new_id("p"),
        title=title,
        purpose=purpose,
        org_id=principal.org_id,
        owner_id=principal.id,
        created_at=ctx.now(),
    )
    session.add(project)
    session.flush()
    session.add(ProjectMember(project_id=project.id, user_id=principal.id, added_at=ctx.now()))
    ctx.audit.append(
        session,
        "project.created",
        principal.id,
        {"project": project.id, "org": principal.org_id},
        {"title": title},
    )
    return project


def add_member(
    ctx: Enclave, session: Session, principal: Principal, project_id: str, user_id: str
) -> ProjectMember:
    project = get_visible_project(session, principal, project_id)
    if project.owner_id != principal.id and not principal.has(Role.ADMIN):
        raise Forbidden("only the project owner adds members")
    user = session.get(User, user_id)
    if user is None or Role.RESEARCHER not in user.roles:
        raise NotFound(f"researcher {user_id} does not exist")
    if session.get(ProjectMember, (project_id, user_id)) is not None:
        raise Conflict(f"{user_id} is already a member of {project_id}")
    member = ProjectMember(project_id=project_id, user_id=user_id, added_at=ctx.now())
    session.add(member)
    ctx.audit.append(session, "project.member_added", principal.id, {"project": project_id, "user": user_id})
    return member


def is_member(session: Session, user_id: str, project_id: str) -> bool:
    return session.get(ProjectMember, (project_id, user_id)) is not None


def member_project_ids(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)))


def get_visible_project(session: Session, principal: Principal, project_id: str) -> Project:
    """A project its members and admins may see; anyone else gets 404, as if it did not exist."""
    project = session.get(Project, project_id)
    if project is None or not (principal.has(Role.ADMIN) or is_member(session, principal.id, project_id)):
        raise NotFound(f"project {project_id} does not exist")
    return project


def list_projects(session: Session, principal: Principal) -> list[Project]:
    query = select(Project).order_by(Project.created_at, Project.id)
    if not principal.has(Role.ADMIN):
        query = query.join(ProjectMember).where(ProjectMember.user_id == principal.id)
    return list(session.scalars(query))

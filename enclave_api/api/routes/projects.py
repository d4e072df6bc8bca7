"""Research projects."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession, require_role
from enclave_api.api.schemas import MemberAdd, ProjectCreate, ProjectPublic
from enclave_api.models import Project
from enclave_api.roles import Role
from enclave_api.services import projects as service

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def project_public(project: Project) -> ProjectPublic:
    return ProjectPublic(
        id=project.id,
        title=project.title,
        purpose=project.purpose,
        org=project.org_id,
        owner=project.owner_id,
        created_at=project.created_at,
    )


@router.post(
    "",
    response_model=ProjectPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)
def create_project(body: ProjectCreate, principal: CurrentPrincipal, enclave: EnclaveDep) -> ProjectPublic:
    with enclave.write() as session:
        project = service.create_project(enclave, session, principal, body.title, body.purpose)
    return project_public(project)


@router.get("", response_model=list[ProjectPublic])
def list_projects(principal: CurrentPrincipal, session: ReadSession) -> list[ProjectPublic]:
    return [project_public(p) for p in service.list_projects(session, principal)]


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(project_id: str, principal: CurrentPrincipal, session: ReadSession) -> ProjectPublic:
    return project_public(service.get_visible_project(session, principal, project_id))


@router.post(
    "/{project_id}/members",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(require_role(Role.RESEARCHER, Role.ADMIN))],
)
def add_member(project_id: str, body: MemberAdd, principal: CurrentPrincipal, enclave: EnclaveDep) -> None:
    with enclave.write() as session:
        service.add_member(enclave, session, principal, project_id, body.user_id)

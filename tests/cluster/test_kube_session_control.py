"""KubernetesSessionControl: the pod of an ended session is found by KubeSpawner's labels and deleted,
with exactly the calls a real API server would get; errors leave the server to be retried."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from sqlalchemy import select
from urllib3.exceptions import MaxRetryError

from enclave_api.context import Enclave
from enclave_api.errors import ConfigurationError
from enclave_api.hub.control import JupyterHubControl, NoSessionControl, make_session_control
from enclave_api.hub.kube import KubernetesSessionControl, label_value, pod_selector
from enclave_api.models import NotebookSession, User
from enclave_api.services import access, sessions
from enclave_api.services.identity import Principal
from enclave_api.settings import Settings
from tests.cluster.conftest import FakeCoreV1Api, user_pod
from tests.conftest import audit_events

NAMESPACE = "enclave"
TIMEOUT = {"_request_timeout": 10.0}
HUB = Principal(
    id="hub", name="JupyterHub", org_id="operator", roles=("hub",), token_id="local", token_kind="api"
)
MINJI = {"component": "singleuser-server", "hub.jupyter.org/username": "minji.park",
         "hub.jupyter.org/servername": "", "release": "enclave"}  # fmt: skip


def control(api: FakeCoreV1Api) -> KubernetesSessionControl:
    return KubernetesSessionControl(NAMESPACE, api=api)


# The label values of KubeSpawner 7.1.0 (kubespawner.slugs.safe_slug with is_valid_label), checked
# against that function for these names and 20,000 random ones.
@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("", ""),
        ("minji.park", "minji.park"),
        ("Researcher_1", "Researcher_1"),
        ("a" * 63, "a" * 63),
        ("a" * 64, "aaaaaaaaaaaaaaaaaaaaa---ffe054fe"),
        ("kim--lee", "kim-lee---6e763630"),
        ("박민지", "x---86682c3a"),
        ("user@hospital.kr", "user-hospital-kr---961477f3"),
        ("_x", "x---a01e47cb"),
        ("1abc-", "x-1abc---b8d32d4b"),
    ],
)
def test_label_values_are_kubespawners(name: str, label: str) -> None:
    assert label_value(name) == label


def test_deletes_the_users_pod_found_by_kubespawner_labels(fake_api: FakeCoreV1Api) -> None:
    fake_api.pods = [
        user_pod("jupyter-minji-2epark", MINJI, "minji.park"),
        user_pod("jupyter-minji-2epark--analysis", MINJI | {"hub.jupyter.org/servername": "analysis"},
                 "minji.park", "analysis"),
        user_pod("jupyter-other", MINJI | {"hub.jupyter.org/username": "other"}, "other"),
    ]  # fmt: skip
    assert control(fake_api).stop_server("minji.park", "") is True
    selector = "component=singleuser-server,hub.jupyter.org/username=minji.park,hub.jupyter.org/servername="
    assert fake_api.calls == [
        ("list", NAMESPACE, {"label_selector": selector, **TIMEOUT}),
        ("delete", "jupyter-minji-2epark", NAMESPACE, {"grace_period_seconds": 1, **TIMEOUT}),
    ]
    assert [p.metadata.name for p in fake_api.pods] == ["jupyter-minji-2epark--analysis", "jupyter-other"]


def test_a_named_server_and_an_unusual_user_name(fake_api: FakeCoreV1Api) -> None:
    user, labels = "박민지@hospital", MINJI | {"hub.jupyter.org/username": label_value("박민지@hospital")}
    fake_api.pods = [
        user_pod("jupyter-x", labels | {"hub.jupyter.org/servername": "study-2"}, user, "study-2")
    ]
    assert KubernetesSessionControl(NAMESPACE, api=fake_api, grace_period_seconds=30).stop_server(
        user, "study-2"
    )
    assert fake_api.calls == [
        ("list", NAMESPACE, {"label_selector": pod_selector(user, "study-2"), **TIMEOUT}),
        ("delete", "jupyter-x", NAMESPACE, {"grace_period_seconds": 30, **TIMEOUT}),
    ]
    assert "hub.jupyter.org/username=hospital---5660e280" in pod_selector(user, "study-2")


def test_labels_alone_never_pick_another_users_pod(fake_api: FakeCoreV1Api) -> None:
    """Label values are slugs (hashed when unusual); the exact name in the annotations decides."""
    fake_api.pods = [user_pod("jupyter-collision", MINJI, "someone.else")]
    assert control(fake_api).stop_server("minji.park", "") is True
    assert [c[0] for c in fake_api.calls] == ["list"]
    assert len(fake_api.pods) == 1


def test_no_pod_means_stopped(fake_api: FakeCoreV1Api) -> None:
    assert control(fake_api).stop_server("minji.park", "") is True
    assert [c[0] for c in fake_api.calls] == ["list"]


def test_a_pod_gone_meanwhile_is_stopped(fake_api: FakeCoreV1Api) -> None:
    fake_api.pods = [user_pod("jupyter-minji-2epark", MINJI, "minji.park")]
    fake_api.delete_error = ApiException(status=404, reason="Not Found")
    assert control(fake_api).stop_server("minji.park", "") is True


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("list", ApiException(status=403, reason="Forbidden")),
        ("list", ApiException(status=500, reason="Internal Server Error")),
        ("list", MaxRetryError(None, "/api/v1/namespaces/enclave/pods", "connection refused")),
        ("delete", ApiException(status=403, reason="Forbidden")),
        ("delete", ApiException(status=409, reason="Conflict")),
        ("delete", MaxRetryError(None, "/api/v1/namespaces/enclave/pods/x", "timed out")),
    ],
)
def test_api_errors_mean_not_yet(fake_api: FakeCoreV1Api, where: str, error: Exception) -> None:
    fake_api.pods = [user_pod("jupyter-minji-2epark", MINJI, "minji.park")]
    setattr(fake_api, f"{where}_error", error)
    assert control(fake_api).stop_server("minji.park", "") is False
    assert len(fake_api.pods) == 1


# --------------------------------------------------------------------------------- chosen by name


def test_backend_is_chosen_by_name() -> None:
    token = "t" * 40
    assert isinstance(make_session_control(None, None, "none"), NoSessionControl)
    assert isinstance(make_session_control("http://hub:8081/hub/api", token, "auto"), JupyterHubControl)
    assert isinstance(make_session_control(None, None, "auto"), NoSessionControl)
    assert isinstance(make_session_control("http://hub:8081/hub/api", token, "jupyterhub"), JupyterHubControl)
    with pytest.raises(ConfigurationError, match="ENCLAVE_HUB_API_URL"):
        make_session_control(None, None, "jupyterhub")
    with pytest.raises(ConfigurationError, match="ENCLAVE_KUBERNETES_NAMESPACE"):
        make_session_control(None, None, "kubernetes")
    # No service account here: the backend says so at startup rather than at the first revocation.
    with pytest.raises(
        ConfigurationError, match="no Kubernetes API credentials from the pod's service account"
    ):
        make_session_control(None, None, "kubernetes", NAMESPACE, in_cluster=True)
    with pytest.raises(ConfigurationError, match="unknown session control"):
        make_session_control(None, None, "docker")


def test_settings_name_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_SESSION_CONTROL", "kubernetes")
    monkeypatch.setenv("ENCLAVE_KUBERNETES_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("ENCLAVE_KUBERNETES_IN_CLUSTER", "false")
    settings = Settings()
    assert (settings.session_control, settings.kubernetes_namespace, settings.kubernetes_in_cluster) == (
        "kubernetes", NAMESPACE, False,
    )  # fmt: skip
    monkeypatch.setenv("ENCLAVE_SESSION_CONTROL", "k8s")
    with pytest.raises(ValueError, match="session_control"):
        Settings()


# ------------------------------------------------------------------ with the enclave's session service


def test_revoked_grant_deletes_the_pod_and_records_it(
    seeded_enclave: Enclave, fake_api: FakeCoreV1Api
) -> None:
    """A session ends with its grant: the API deletes the pod (retrying while the Kubernetes API
    fails) and records the server as stopped; the end itself is audited once."""
    seeded_enclave.session_control = control(fake_api)
    with seeded_enclave.write() as session:
        started = sessions.start(seeded_enclave, session, HUB, "minji.park", "", None)
        grant_id, session_id = started.grants[0].id, started.record.id
        user = session.get(User, "jiho.kim")  # custodian of wdbc's hospital
        assert user is not None
        custodian = Principal.local(user)
    fake_api.pods = [user_pod("jupyter-minji-2epark", MINJI, "minji.park")]
    with seeded_enclave.write() as session:
        access.revoke_grant(seeded_enclave, session, custodian, grant_id, "consent withdrawn")

    fake_api.list_error = ApiException(status=503, reason="Service Unavailable")
    assert sessions.stop_pending_servers(seeded_enclave) == 0
    assert _stopped(seeded_enclave, session_id) is False, "not confirmed: retried later"
    fake_api.list_error = None
    assert sessions.stop_pending_servers(seeded_enclave) == 1
    assert _stopped(seeded_enclave, session_id) is True
    assert fake_api.pods == []
    assert [c[0] for c in fake_api.calls] == ["list", "list", "delete"]
    assert sessions.stop_pending_servers(seeded_enclave) == 0, "nothing left to stop"
    ended = [
        e for e in audit_events(seeded_enclave, "session.ended") if e["subject"]["session"] == session_id
    ]
    assert [(e["actor"], e["details"]["reason"]) for e in ended] == [("jiho.kim", "grant_revoked")]


def _stopped(enclave: Enclave, session_id: str) -> bool:
    with enclave.read() as session:
        record = session.scalars(select(NotebookSession).where(NotebookSession.id == session_id)).one()
        return bool(record.server_stopped)

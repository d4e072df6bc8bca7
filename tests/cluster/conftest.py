"""The cluster backend (enclave_api/hub/kube.py) without a Kubernetes API server.

The Kubernetes API is the one thing that cannot run here: :class:`FakeCoreV1Api` subclasses the real
client class and overrides the two calls the backend makes, recording them and answering with real
client objects (``V1PodList``/``V1Pod``) or real ``ApiException``\\ s. Everything else is real: the
enclave API (on SQLite and PostgreSQL), its session service and JupyterHub's ``Spawner``.

Fixtures:

* ``fake_api`` — a :class:`FakeCoreV1Api` holding no pods.
* ``hub_credential`` — a token of the hub's service account in the seeded enclave, issued the way
  ``enclave up`` issues it (:func:`enclave_api.services.sessions.issue_hub_credential`).
* ``live_api`` — the seeded enclave's API served on a loopback port; yields its base URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import CoreV1Api, V1ObjectMeta, V1Pod, V1PodList
from kubernetes.client.exceptions import ApiException

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.services import sessions
from tests.liveserver import serve


class FakeCoreV1Api(CoreV1Api):
    """The real client with ``list_namespaced_pod`` and ``delete_namespaced_pod`` answered from memory.

    ``pods`` are the pods of the namespace (only those matching the label selector are listed, as the
    API server would); ``list_error``/``delete_error`` are raised instead of answering; ``calls``
    records every call with its arguments.
    """

    def __init__(self) -> None:
        super().__init__(api_client=None)
        self.pods: list[V1Pod] = []
        self.calls: list[tuple[Any, ...]] = []
        self.list_error: Exception | None = None
        self.delete_error: Exception | None = None

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> V1PodList:
        self.calls.append(("list", namespace, kwargs))
        if self.list_error is not None:
            raise self.list_error
        wanted = dict(term.split("=", 1) for term in kwargs["label_selector"].split(","))
        items = [
            p for p in self.pods if all((p.metadata.labels or {}).get(k) == v for k, v in wanted.items())
        ]
        return V1PodList(items=items)

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> V1Pod:
        self.calls.append(("delete", name, namespace, kwargs))
        if self.delete_error is not None:
            raise self.delete_error
        for pod in self.pods:
            if pod.metadata.name == name:
                self.pods.remove(pod)
                return pod
        raise ApiException(status=404, reason="Not Found")


def user_pod(name: str, labels: dict[str, str], user: str, server: str = "") -> V1Pod:
    """A pod as KubeSpawner 7 creates it: labels (slugs) and annotations (exact names)."""
    annotations = {"hub.jupyter.org/username": user}
    if server:
        annotations["hub.jupyter.org/servername"] = server
    return V1Pod(
        metadata=V1ObjectMeta(name=name, namespace="enclave", labels=labels, annotations=annotations)
    )


@pytest.fixture
def fake_api() -> FakeCoreV1Api:
    return FakeCoreV1Api()


@pytest.fixture
def hub_credential(seeded_enclave: Enclave) -> str:
    with seeded_enclave.write() as session:
        return sessions.issue_hub_credential(seeded_enclave, session)


@pytest.fixture
def live_api(seeded_enclave: Enclave) -> Iterator[str]:
    with serve(create_app(enclave=seeded_enclave)) as url:
        yield url

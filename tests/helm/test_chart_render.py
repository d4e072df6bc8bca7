"""The chart renders, for every realistic value set, into objects Kubernetes accepts, and the API is
deployed as the issue asks: replicas >= 2, probes on /healthz, a PodDisruptionBudget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import helm_python
import kubernetes_validate
import pytest

from tests.helm.conftest import CHART_DIR, NAMESPACE, RELEASE, Manifests

#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema bundled.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

Render = Callable[[dict[str, Any]], Manifests]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_strictly(
    render: Render, value_set: tuple[str, dict[str, Any]], version: str
) -> None:
    _, values = value_set
    manifests = render(values)
    assert manifests.objects
    for obj in manifests.objects:
        # --strict: an unknown or misplaced field is an error, not silently dropped by the API server.
        # A kind without a schema raises too (SchemaNotFoundError): every kind here is built in.
        kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"].get("namespace") in (None, NAMESPACE)


def test_chart_declares_what_it_validates_against() -> None:
    chart = helm_python.Chart.load(CHART_DIR)
    assert chart.metadata["kubeVersion"] == f">={KUBERNETES_VERSIONS[0]}-0"
    assert all(v in kubernetes_validate.utils.all_versions() for v in KUBERNETES_VERSIONS)
    (dependency,) = chart.metadata["dependencies"]
    assert dependency["name"] == "jupyterhub"
    assert dependency["repository"] == "https://hub.jupyter.org/helm-chart/"
    assert dependency["condition"] == "jupyterhub.enabled"


def test_helm_lint_finds_nothing(chart: helm_python.Chart) -> None:
    from tests.helm.conftest import REQUIRED

    report = helm_python.lint(CHART_DIR, REQUIRED, strict=True, namespace=NAMESPACE)
    problems = {m["error"] for m in report["messages"] if m["severity"] >= 2}
    # The one thing offline lint must find: the JupyterHub chart is not downloaded (helm dependency build).
    missing = "chart directory is missing these dependencies: jupyterhub"
    assert problems == {missing}, report
    assert report["errors"] == [missing]


def test_the_objects_of_a_full_install(render: Render) -> None:
    manifests = render({})
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in manifests.objects)
    assert kinds == [
        "CronJob/enclave-audit-checkpoint",
        "Deployment/enclave-api",
        "Namespace/enclave",
        "NetworkPolicy/enclave-api",
        "NetworkPolicy/enclave-audit-checkpoint",
        "NetworkPolicy/enclave-sessions",
        "PersistentVolumeClaim/enclave-data",
        "PodDisruptionBudget/enclave-api",
        "Role/enclave-api",
        "RoleBinding/enclave-api",
        "Service/enclave-api",
        "ServiceAccount/enclave-api",
        "ServiceAccount/enclave-audit-checkpoint",
    ]


def test_api_is_highly_available_and_probed_on_healthz(
    render: Render, value_set: tuple[str, dict[str, Any]]
) -> None:
    _, values = value_set
    manifests = render(values)
    deployment = manifests.one("Deployment", "enclave-api")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    pdb = manifests.one("PodDisruptionBudget", "enclave-api")
    assert pdb["spec"]["minAvailable"] >= 1
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"], "a drain could never evict"
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    service = manifests.one("Service", "enclave-api")
    assert _selects(service["spec"]["selector"], pod["metadata"]["labels"])
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert port == 8000
    assert container["command"] == ["enclave", "api", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104


def test_checkpoint_job_runs_the_cli_command(render: Render) -> None:
    from typer.testing import CliRunner

    from enclave_api.cli import app

    cronjob = render({}).one("CronJob", "enclave-audit-checkpoint")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][0] == "enclave"
    result = CliRunner().invoke(app, [*container["command"][1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Sign a checkpoint of the log now" in result.output


def test_storage_is_kept_and_shared_by_the_replicas(render: Render) -> None:
    pvc = render({}).one("PersistentVolumeClaim", "enclave-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    hospital = render({"storage": {"existingClaim": "enclave-datasets-s3"}})
    assert hospital.of_kind("PersistentVolumeClaim") == []
    for _, _, spec in hospital.pod_specs():
        claims = [
            v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v
        ]
        assert claims == ["enclave-datasets-s3"]


def test_release_name_reaches_the_labels(chart: helm_python.Chart) -> None:
    from tests.helm.conftest import REQUIRED

    rendered = chart.render(REQUIRED, name="hospital-a", namespace="enclave-a")
    assert RELEASE != "hospital-a"
    assert "app.kubernetes.io/instance: hospital-a" in rendered["enclave/templates/api/deployment.yaml"]
    assert "name: enclave-a" in rendered["enclave/templates/namespace/namespace.yaml"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())

"""The hospital values of docs/deploy-kubernetes.md are values this chart accepts and renders, and
they keep user pods sandboxes: a reader who copies them gets what the tests check."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.helm.conftest import Manifests
from tests.helm.test_chart_security import restricted_violations, user_pod_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy-kubernetes.md"


def hospital_values() -> dict[str, Any]:
    text = DOC.read_text()
    section = text[text.index("## 3. Values for a hospital") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    values: dict[str, Any] = yaml.safe_load(block.group(1))
    return values


def test_documented_values_install(
    chart: helm_python.Chart,
    render: Callable[..., Manifests],
    merged_values: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    values = hospital_values()
    chart.validate_schema(values)  # complete on its own: no required reference is missing
    manifests = render(values, required=False)
    deployment = manifests.one("Deployment", "enclave-api")
    assert deployment["spec"]["replicas"] == 3
    assert manifests.of_kind("Namespace") == [], "the namespace of step 2 is not the chart's"
    problems = [
        p for name, meta, spec in manifests.pod_specs() for p in restricted_violations(name, meta, spec)
    ]
    assert problems == []
    jupyterhub = merged_values(values)
    assert restricted_violations("user-pod", {}, user_pod_spec(jupyterhub)) == []
    assert jupyterhub["jupyterhub"]["singleuser"]["networkPolicy"]["enabled"] is False
    assert manifests.one("NetworkPolicy", "enclave-sessions")
    # The OIDC secret joins the hub's environment; the hub's enclave credential stays.
    assert set(jupyterhub["jupyterhub"]["hub"]["extraEnv"]) == {"ENCLAVE_HUB_TOKEN", "OAUTH_CLIENT_SECRET"}


def test_documented_commands_exist() -> None:
    from typer.testing import CliRunner

    from enclave_api.cli import app

    text = DOC.read_text()
    commands = set(re.findall(r"^api ((?:org|user|token) \w+)", text, re.M))
    assert commands == {"org add", "user add"}
    for command in [
        *commands,
        "token issue",
        "token revoke",
        "dataset register",
        "audit verify",
        "user list",
    ]:
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)

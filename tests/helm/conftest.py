"""The Helm chart (helm/enclave), rendered offline with the real Helm SDK (helm-python-sdk).

No cluster and no download: the zero-to-jupyterhub dependency is not in ``charts/``, so a render holds
the enclave's own objects (with ``jupyterhub.enabled`` true the API is still configured for the hub,
which is what the JupyterHub-facing settings need). What the chart hands to the JupyterHub chart is
checked as values (:func:`merged_values`).

Fixtures:

* ``chart`` — the loaded :class:`helm_python.Chart` (session scope).
* ``render`` — ``render(values) -> Manifests``: render with ``values`` over :data:`REQUIRED`
  (the secret references the chart refuses to render without), parsed into objects.
* ``value_set`` — parametrised over :data:`VALUE_SETS`, the realistic deployments every rendering
  test runs on; yields ``(name, values)``.
* ``merged_values`` — ``merged_values(values) -> dict``: the chart's defaults coalesced with
  ``values``, as an install would see them.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "enclave"
RELEASE, NAMESPACE = "enclave", "enclave"

#: What every install must give: the Secrets with the database URL and the keys (no defaults).
REQUIRED: dict[str, Any] = {
    "database": {"existingSecret": "enclave-database"},
    "secrets": {"existingSecret": "enclave-keys-external"},
}

#: Keys passed inline at install (--set-file); made up here, never defaults of the chart.
INLINE_KEYS = {
    "tokenPepper": "tp-" + "7" * 61,
    "pseudonymKey": "pk-" + "9" * 61,
    "kek": '{"current": "k1", "keys": {"k1": "' + base64.b64encode(b"k" * 32).decode() + '"}}',
    "auditSigningKey": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
}

#: The deployments the rendering tests run on.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    # A hospital: its registry, KMS-held keys, an existing volume, TLS and OIDC at the hub, its settings.
    "hospital": {
        "namespace": {"create": False, "podSecurityVersion": "v1.30"},
        "api": {
            "replicas": 3,
            "image": {"repository": "registry.hospital.example/enclave/api", "tag": "0.1.0"},
            "imagePullSecrets": [{"name": "hospital-registry"}],
            "settings": {"egressReviews": 2, "sessionMaxHours": 8, "piiNer": True},
            "networkPolicy": {
                "extraIngress": [
                    {
                        "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
                        "ports": [{"port": 8000, "protocol": "TCP"}],
                    }
                ]
            },
            "nodeSelector": {"hospital.example/pool": "enclave"},
            "tolerations": [{"key": "enclave", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "database": {"port": 6432},
        "secrets": {"kms": {"secretProviderClass": "enclave-vault-keys"}},
        "storage": {"existingClaim": "enclave-datasets-s3"},
        "auditCheckpoint": {"schedule": "*/5 * * * *"},
        "jupyterhub": {
            "proxy": {"https": {"enabled": True, "type": "secret", "secret": {"name": "hub-tls"}}},
            "hub": {
                "config": {
                    "JupyterHub": {"authenticator_class": "generic-oauth"},
                    "GenericOAuthenticator": {"client_id": "enclave", "username_claim": "preferred_username"},
                }
            },
        },
    },
    # Keys passed at install instead of a Secret reference.
    "inline-keys": {"secrets": {"existingSecret": "", "values": INLINE_KEYS}},
    # The enclave without JupyterHub (API, CLI and portal only), no checkpoint job.
    "no-hub": {"jupyterhub": {"enabled": False}, "auditCheckpoint": {"enabled": False}},
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursively for mappings (like Helm's value coalescing)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Manifests:
    """The objects of one render."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def pod_specs(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(kind/name, pod metadata, pod spec)`` of every workload."""
        pods = []
        for obj in self.objects:
            template = None
            if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                template = obj["spec"]["template"]
            elif obj["kind"] == "CronJob":
                template = obj["spec"]["jobTemplate"]["spec"]["template"]
            if template is not None:
                pods.append(
                    (f"{obj['kind']}/{obj['metadata']['name']}", template["metadata"], template["spec"])
                )
        return pods


@pytest.fixture(scope="session")
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> Callable[[dict[str, Any]], Manifests]:
    rendered_texts: dict[str, dict[str, str]] = {}  # one Helm render per distinct value set

    def do(values: dict[str, Any], required: bool = True) -> Manifests:
        given = deep_merge(REQUIRED, values) if required else values
        key = json.dumps(given, sort_keys=True)
        if key not in rendered_texts:
            rendered_texts[key] = chart.render(given, name=RELEASE, namespace=NAMESPACE)
        objects = [
            doc
            for path, text in sorted(rendered_texts[key].items())
            if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text)
            if doc
        ]
        return Manifests(objects)

    return do


@pytest.fixture(params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, VALUE_SETS[request.param]


@pytest.fixture(scope="session")
def merged_values(chart: helm_python.Chart) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def merge(values: dict[str, Any]) -> dict[str, Any]:
        return chart.merge_values(deep_merge(REQUIRED, values))

    return merge

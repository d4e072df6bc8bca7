"""Values: the strict schema, secrets without defaults, and the settings and hub wiring that must not
drift from the code (Settings fields, the hub plug-ins, the JupyterHub chart's generated token)."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import pytest
import yaml

from enclave_api.settings import Settings
from tests.helm.conftest import CHART_DIR, INLINE_KEYS, REQUIRED, VALUE_SETS, Manifests, deep_merge

Render = Callable[..., Manifests]

#: Settings that are secrets: they must come from a Secret, never as a literal in a manifest.
SECRET_SETTINGS = {
    "ENCLAVE_DATABASE_URL",
    "ENCLAVE_TOKEN_PEPPER",
    "ENCLAVE_PSEUDONYM_KEY",
    "ENCLAVE_HUB_API_TOKEN",
}
#: Free-form objects of the schema (Kubernetes types or the JupyterHub chart's own values).
FREE_FORM = {"global", "jupyterhub", "api.nodeSelector", "api.affinity"}


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return schema


def _objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if schema.get("type") == "object":
        yield path, schema
        for name, sub in (schema.get("properties") or {}).items():
            yield from _objects(sub, f"{path}.{name}" if path else name)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield from _objects(schema["items"], f"{path}[]")


# ------------------------------------------------------------------------------------------ schema


@pytest.mark.parametrize(
    "path",
    ["replica", "api.replica", "api.image.digest", "api.settings.maxEpsilonn", "secrets.values.kekFile",
     "secrets.kms.keyId", "storage.size_gb", "database.password", "auditCheckpoint.image", "hub.token",
     "namespace.labels", "sessions.dnsPort"],
)  # fmt: skip
def test_schema_rejects_unknown_keys(chart: helm_python.Chart, path: str) -> None:
    *parents, leaf = path.split(".")
    typo: dict[str, Any] = {leaf: "x"}
    for parent in reversed(parents):
        typo = {parent: typo}
    with pytest.raises(helm_python.HelmValuesError, match=f"additional properties '{leaf}' not allowed"):
        chart.validate_schema(deep_merge(REQUIRED, typo))


def test_schema_accepts_every_value_set(chart: helm_python.Chart) -> None:
    for values in VALUE_SETS.values():
        chart.validate_schema(deep_merge(REQUIRED, values))


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"api": {"replicas": 1}}, "/api/replicas"),
        ({"api": {"image": {"pullPolicy": "Sometimes"}}}, "/api/image/pullPolicy"),
        ({"storage": {"size": "100GB"}}, "/storage/size"),
        ({"api": {"settings": {"egressReviews": 0}}}, "/api/settings/egressReviews"),
        ({"namespace": {"podSecurityVersion": "newest"}}, "/namespace/podSecurityVersion"),
        ({"secrets": {"values": {"tokenPepper": "changeme"}}}, "/secrets/values/tokenPepper"),
    ],
)
def test_schema_rejects_bad_values(chart: helm_python.Chart, values: dict[str, Any], constraint: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=constraint):
        chart.validate_schema(deep_merge(REQUIRED, values))


def test_schema_is_strict_and_documented_everywhere() -> None:
    """Every object of the enclave's own values rejects unknown keys, and every key has a description
    (the schema is the configuration reference)."""
    schema = _schema()
    objects = dict(_objects(schema))
    strict = {path for path, obj in objects.items() if obj.get("additionalProperties") is False}
    loose = set(objects) - strict - {""} - FREE_FORM
    # requests/limits: maps of quantities whose keys are limited by propertyNames instead.
    assert {
        p for p in loose if not p.endswith((".requests", ".limits", "extraIngress[]", "tolerations[]"))
    } == set()
    assert "" in strict
    undocumented = [
        f"{path}.{name}"
        for path, obj in objects.items()
        for name, sub in (obj.get("properties") or {}).items()
        if not sub.get("description")
    ]
    assert undocumented == []
    # Every key of values.yaml is in the schema (and so documented), down to the JupyterHub section.
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert set(defaults) == set(schema["properties"]) - {"global"}


# ----------------------------------------------------------------------------------------- secrets


def test_values_yaml_holds_no_secret() -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert defaults["database"]["existingSecret"] == ""
    assert defaults["secrets"]["existingSecret"] == ""
    assert set(defaults["secrets"]["values"].values()) == {""}
    assert defaults["secrets"]["kms"]["secretProviderClass"] == ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secrets": {"existingSecret": "keys"}}, "database.existingSecret is required"),
        ({"database": {"existingSecret": "db"}}, "secrets.existingSecret is required"),
        (
            {
                "database": {"existingSecret": "db"},
                "secrets": {"values": {"tokenPepper": INLINE_KEYS["tokenPepper"]}},
            },
            "secrets.existingSecret is required",
        ),
        (
            {
                "database": {"existingSecret": "db"},
                "secrets": {"existingSecret": "keys", "values": INLINE_KEYS},
            },
            "set either secrets.existingSecret or secrets.values, not both",
        ),
        (
            {**REQUIRED, "storage": {"accessModes": ["ReadWriteOnce"]}},
            "storage.accessModes must include ReadWriteMany when api.replicas > 1",
        ),
    ],
)
def test_render_without_a_required_secret_fails_clearly(
    render: Render, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render(values, required=False)


def test_no_rendered_secret_carries_a_default(render: Render, value_set: tuple[str, dict[str, Any]]) -> None:
    name, values = value_set
    manifests = render(values)
    secrets = manifests.of_kind("Secret")
    if name != "inline-keys":
        assert secrets == [], "only keys given at install are ever rendered"
        return
    (secret,) = secrets
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "token-pepper": INLINE_KEYS["tokenPepper"],
        "pseudonym-key": INLINE_KEYS["pseudonymKey"],
        "kek.json": INLINE_KEYS["kek"],
        "audit-signing-key.pem": INLINE_KEYS["auditSigningKey"],
    }
    assert "stringData" not in secret


def test_secret_settings_come_from_secrets_only(
    render: Render, value_set: tuple[str, dict[str, Any]]
) -> None:
    _, values = value_set
    for name, _, spec in render(values).pod_specs():
        for container in spec["containers"]:
            for env in container["env"]:
                if env["name"] in SECRET_SETTINGS:
                    assert "value" not in env, f"{name}: {env['name']} as a literal"
                    assert set(env["valueFrom"]) == {"secretKeyRef"}
                    assert env["valueFrom"]["secretKeyRef"].get("optional") is not True


# ------------------------------------------------------------------------------ settings and wiring


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_every_enclave_variable_is_a_settings_field(
    render: Render, value_set: tuple[str, dict[str, Any]]
) -> None:
    """The settings ignore unknown ENCLAVE_* variables: a misspelt one in the chart would be lost."""
    _, values = value_set
    fields = {f"ENCLAVE_{name.upper()}" for name in Settings.model_fields}
    pods = render(values).pod_specs()
    for name, _, spec in pods:
        (container,) = spec["containers"]
        env = _env(container)
        names = {n for n in env if n.startswith("ENCLAVE_")}
        assert names - fields == set(), name
        # What production mode needs to start (enclave_api.secret_store.load_secrets), and the files
        # it names are inside the mounted key volume.
        assert env["ENCLAVE_MODE"]["value"] == "production"
        for required in ("ENCLAVE_TOKEN_PEPPER", "ENCLAVE_PSEUDONYM_KEY", "ENCLAVE_KEK_FILE",
                         "ENCLAVE_AUDIT_SIGNING_KEY_FILE", "ENCLAVE_DATABASE_URL"):  # fmt: skip
            assert required in env, f"{name}: {required}"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for key_file in ("ENCLAVE_KEK_FILE", "ENCLAVE_AUDIT_SIGNING_KEY_FILE"):
            directory, file_name = env[key_file]["value"].rsplit("/", 1)
            keys = next(v for v in spec["volumes"] if v["name"] == mounts[directory])
            if "secret" in keys:
                assert file_name in {item["path"] for item in keys["secret"]["items"]}
            else:
                assert keys["csi"]["volumeAttributes"]["secretProviderClass"] == "enclave-vault-keys"
        data_dir = env["ENCLAVE_DATA_DIR"]["value"]
        assert mounts[data_dir] == "data"
        assert env["ENCLAVE_AUDIT_SINK_PATH"]["value"].startswith(data_dir + "/")
        # The values parse as the settings would read them.
        literal = {
            n[len("ENCLAVE_") :].lower(): e["value"]
            for n, e in env.items()
            if n.startswith("ENCLAVE_") and "value" in e
        }
        Settings.model_validate(literal | {"database_url": "postgresql+psycopg://x@db/enclave"})


def test_api_settings_values_reach_the_environment(render: Render) -> None:
    hospital = VALUE_SETS["hospital"]
    env = _env(render(hospital).one("Deployment", "enclave-api")["spec"]["template"]["spec"]["containers"][0])
    assert env["ENCLAVE_EGRESS_REVIEWS"]["value"] == "2"
    assert env["ENCLAVE_SESSION_MAX_HOURS"]["value"] == "8"
    assert env["ENCLAVE_PII_NER"]["value"] == "true"
    assert env["ENCLAVE_SESSION_CONTROL"]["value"] == "kubernetes"
    assert env["ENCLAVE_KUBERNETES_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }


def test_the_hub_and_the_api_find_each_other(
    render: Render, merged_values: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    manifests = render({})
    service = manifests.one("Service", "enclave-api")
    api_url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    hub = merged_values({})["jupyterhub"]["hub"]
    assert hub["config"]["EnclaveHubClient"]["api_url"] == api_url
    assert hub["services"]["enclave-api"]["url"] == api_url
    assert hub["config"]["JupyterHub"]["authenticator_class"] == "enclave_api.hub.auth.EnclaveAuthenticator"
    # The API authenticates to the hub with the token the JupyterHub chart generates for the service.
    env = _env(manifests.one("Deployment", "enclave-api")["spec"]["template"]["spec"]["containers"][0])
    ref = env["ENCLAVE_HUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("hub", "hub.services.enclave-api.apiToken")
    assert env["ENCLAVE_HUB_API_URL"]["value"] == "http://hub:8081/hub/api"
    assert hub["loadRoles"]["enclave-api"] == {
        "scopes": ["servers", "read:users"],
        "services": ["enclave-api"],
    }
    # Without JupyterHub the API neither expects a hub nor its token.
    bare = _env(
        render({"jupyterhub": {"enabled": False}}).one("Deployment", "enclave-api")["spec"]["template"][
            "spec"
        ]["containers"][0]
    )
    assert "ENCLAVE_HUB_API_URL" not in bare and "ENCLAVE_HUB_API_TOKEN" not in bare


def test_hub_extra_config_wires_the_session_hooks(
    merged_values: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """The hub's extra config is Python the hub runs: it parses and calls the tested configure_hub."""
    from enclave_api.hub import kube

    (source,) = merged_values({})["jupyterhub"]["hub"]["extraConfig"].values()
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [
        ("enclave_api.hub.kube", ["configure_hub"])
    ]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [ast.unparse(c) for c in calls] == ["configure_hub(c)"]
    assert callable(kube.configure_hub)
    env = merged_values({})["jupyterhub"]["hub"]["extraEnv"]["ENCLAVE_HUB_TOKEN"]
    assert env["valueFrom"]["secretKeyRef"]["name"] == "enclave-hub-credential"

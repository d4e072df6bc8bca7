"""Security properties read off the rendered objects and the values handed to the JupyterHub chart:
every pod meets the restricted Pod Security Standard (non-root, no capabilities, RuntimeDefault
seccomp, no escalation, read-only root filesystem, limits), and user pods reach the hub and the API
and nothing else (DESIGN.md §3.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helm.conftest import RELEASE, VALUE_SETS, Manifests

Render = Callable[[dict[str, Any]], Manifests]

#: Volume types the restricted Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip

#: Labels of the JupyterHub chart's pods (legacy + modern labels) and of a user pod as KubeSpawner 7
#: labels it under that chart (common labels, component, user and server).
HUB_POD = {"component": "hub", "app": "jupyterhub", "release": RELEASE, "app.kubernetes.io/component": "hub",
           "hub.jupyter.org/network-access-proxy-api": "true"}  # fmt: skip
PROXY_POD = {"component": "proxy", "app": "jupyterhub", "release": RELEASE,
             "app.kubernetes.io/component": "proxy", "hub.jupyter.org/network-access-hub": "true",
             "hub.jupyter.org/network-access-singleuser": "true"}  # fmt: skip
AUTOHTTPS_POD = {"component": "autohttps", "app": "jupyterhub", "release": RELEASE}
SCHEDULER_POD = {"component": "user-scheduler", "app": "jupyterhub", "release": RELEASE}
USER_POD = {"component": "singleuser-server", "app": "jupyterhub", "release": RELEASE,
            "app.kubernetes.io/component": "singleuser-server", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/managed-by": "kubespawner", "hub.jupyter.org/network-access-hub": "true",
            "hub.jupyter.org/username": "minji.park", "hub.jupyter.org/servername": ""}  # fmt: skip
OTHER_USER_POD = USER_POD | {"hub.jupyter.org/username": "other.researcher"}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def restricted_violations(name: str, pod_meta: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """What in a pod breaks the restricted Pod Security Standard, or this chart's stricter rules."""
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            problems.append(f"{name}: {host}")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"{name}: volume {volume['name']} of type {kinds}")
    containers = [*(spec.get("initContainers") or []), *spec["containers"]]
    for container in containers:
        where = f"{name}/{container['name']}"
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: capabilities {caps}")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot not set")
        if 0 in (sc.get("runAsUser"), pod_sc.get("runAsUser")):
            problems.append(f"{where}: runs as uid 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccomp {seccomp}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: writable root filesystem")
        limits = (container.get("resources") or {}).get("limits") or {}
        if not {"cpu", "memory"} <= set(limits):
            problems.append(f"{where}: no cpu/memory limits")
        for port in container.get("ports") or []:
            if "hostPort" in port:
                problems.append(f"{where}: hostPort")
    return problems


def user_pod_spec(values: dict[str, Any]) -> dict[str, Any]:
    """The user pod KubeSpawner builds from the JupyterHub chart values this chart passes (its
    security-relevant part): pod/container security contexts, token, limits, volumes, init containers."""
    jupyterhub = values["jupyterhub"]
    single = jupyterhub["singleuser"]
    kube = jupyterhub["hub"]["config"]["KubeSpawner"]
    container_sc = {
        "runAsUser": single["uid"],
        "allowPrivilegeEscalation": single["allowPrivilegeEscalation"],
    }
    container_sc |= kube["container_security_context"]
    init = []
    if single["cloudMetadata"]["blockWithIptables"]:
        # What the JupyterHub chart adds then: a privileged iptables container.
        init.append({"name": "block-cloud-metadata", "securityContext": {"privileged": True, "runAsUser": 0}})
    return {
        "automountServiceAccountToken": kube["automount_service_account_token"],
        "securityContext": kube["pod_security_context"],
        "initContainers": init,
        "containers": [
            {
                "name": "notebook",
                "securityContext": container_sc,
                "resources": {"limits": {"cpu": single["cpu"]["limit"], "memory": single["memory"]["limit"]}},
            }
        ],
        "volumes": single["storage"]["extraVolumes"] + [{"name": "home", "persistentVolumeClaim": {}}],
    }


# ------------------------------------------------------------------------------------------- pods


def test_every_enclave_pod_meets_the_restricted_standard(
    render: Render, value_set: tuple[str, dict[str, Any]]
) -> None:
    _, values = value_set
    pods = render(values).pod_specs()
    assert pods
    problems = [p for name, meta, spec in pods for p in restricted_violations(name, meta, spec)]
    assert problems == []
    for name, _, spec in pods:
        # Only the API holds a Kubernetes credential (it deletes the pods of ended sessions).
        assert spec["automountServiceAccountToken"] is (name == "Deployment/enclave-api"), name
        assert spec["enableServiceLinks"] is False, name


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_user_pods_are_sandboxes(
    merged_values: Callable[[dict[str, Any]], dict[str, Any]], name: str
) -> None:
    values = merged_values(VALUE_SETS[name])
    spec = user_pod_spec(values)
    assert restricted_violations("user-pod", {}, spec) == []
    assert spec["automountServiceAccountToken"] is False, "a session must hold no Kubernetes token"
    kube = values["jupyterhub"]["hub"]["config"]["KubeSpawner"]
    assert kube["disable_user_config"] is True, "the lock-down in the image must not be overridable"
    assert kube["env_keep"] == []
    assert values["jupyterhub"]["hub"]["config"]["JupyterHub"]["admin_access"] is False


def test_the_sandbox_checks_catch_a_weakened_user_pod(
    merged_values: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """The checks above can fail: the JupyterHub chart's own defaults would not pass them."""
    weakened = merged_values(
        {
            "jupyterhub": {
                "singleuser": {"cloudMetadata": {"blockWithIptables": True}},
                "hub": {
                    "config": {"KubeSpawner": {"container_security_context": {"capabilities": {"drop": []}}}}
                },
            }
        }
    )
    problems = restricted_violations("user-pod", {}, user_pod_spec(weakened))
    assert "user-pod/block-cloud-metadata: privileged" in problems
    assert any(p.startswith("user-pod/notebook: capabilities") for p in problems)


def test_namespace_enforces_the_restricted_standard(render: Render) -> None:
    namespace = render({}).one("Namespace", "enclave")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest"
    assert namespace["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pinned = render({"namespace": {"create": True, "podSecurityVersion": "v1.30"}}).one(
        "Namespace", "enclave"
    )
    assert pinned["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] == "v1.30"
    assert render({"namespace": {"create": False}}).of_kind("Namespace") == []


def test_api_may_only_list_and_delete_pods_in_its_namespace(render: Render) -> None:
    manifests = render({})
    role = manifests.one("Role", "enclave-api")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]
    binding = manifests.one("RoleBinding", "enclave-api")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "enclave-api",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "enclave-api", "namespace": "enclave"}]
    assert manifests.of_kind("ClusterRole") == [] and manifests.of_kind("ClusterRoleBinding") == []


# ------------------------------------------------------------------------------- network policies


def _policies_selecting(
    manifests: Manifests, labels: dict[str, str], policy_type: str
) -> list[dict[str, Any]]:
    return [
        p
        for p in manifests.of_kind("NetworkPolicy")
        if matches(p["spec"]["podSelector"], labels) and policy_type in p["spec"]["policyTypes"]
    ]


def _peer_targets(peer: dict[str, Any], candidates: dict[str, dict[str, str]]) -> set[str]:
    """Which candidate pods (all in the release namespace) a NetworkPolicy peer admits."""
    assert set(peer) == {"podSelector"}, f"not a same-namespace pod peer: {peer}"
    return {name for name, labels in candidates.items() if matches(peer["podSelector"], labels)}


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def test_user_pods_reach_only_the_hub_and_the_api(
    render: Render, value_set: tuple[str, dict[str, Any]]
) -> None:
    _, values = value_set
    manifests = render(values)
    api_pod = manifests.one("Deployment", "enclave-api")["spec"]["template"]["metadata"]["labels"]
    checkpoint_pods = [meta["labels"] for name, meta, _ in manifests.pod_specs() if "checkpoint" in name]
    candidates = {
        "hub": HUB_POD, "api": api_pod, "proxy": PROXY_POD, "autohttps": AUTOHTTPS_POD,
        "user-scheduler": SCHEDULER_POD, "user": USER_POD, "other-user": OTHER_USER_POD,
        **{f"checkpoint{i}": labels for i, labels in enumerate(checkpoint_pods)},
    }  # fmt: skip
    for user in (USER_POD, OTHER_USER_POD):
        egress = _policies_selecting(manifests, user, "Egress")
        assert egress, "no policy restricts user pod egress: it would be open"
        allowed: dict[str, set[tuple[Any, str]]] = {}
        for policy in egress:
            for rule in policy["spec"].get("egress") or []:
                # A rule without `to` (or without ports) allows every destination (or port).
                assert rule.get("to"), f"{policy['metadata']['name']}: egress to anywhere"
                assert _ports(rule), f"{policy['metadata']['name']}: egress on every port"
                for peer in rule["to"]:
                    targets = _peer_targets(peer, candidates)
                    assert len(targets) == 1, f"peer {peer} admits {targets}"
                    allowed.setdefault(targets.pop(), set()).update(_ports(rule))
        assert allowed == {"hub": {(8081, "TCP")}, "api": {(8000, "TCP")}}
        ingress = _policies_selecting(manifests, user, "Ingress")
        assert ingress
        sources = {
            target
            for policy in ingress
            for rule in policy["spec"].get("ingress") or []
            for peer in rule["from"]
            for target in _peer_targets(peer, candidates)
            if _ports(rule) == {(8888, "TCP")}
        }
        assert sources == {"proxy", "hub"}
        rules = [r for p in ingress for r in p["spec"]["ingress"]]
        assert all(r.get("from") and _ports(r) == {(8888, "TCP")} for r in rules)


def test_the_jupyterhub_chart_opens_nothing_for_user_pods(
    merged_values: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Its own user-pod policy would let pods reach DNS, the proxy and the internet: it is off, and
    each of its egress allowances is off too should someone turn it back on."""
    values = merged_values({})["jupyterhub"]
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is False
    assert set(policy["egressAllowRules"].values()) == {False}
    assert policy.get("egress", []) == []
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    for component in (values["hub"], values["proxy"]["chp"]):
        assert component["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False


def test_api_accepts_only_the_hub_proxy_and_sessions(render: Render) -> None:
    manifests = render({})
    api_pod = manifests.one("Deployment", "enclave-api")["spec"]["template"]["metadata"]["labels"]
    (policy,) = _policies_selecting(manifests, api_pod, "Ingress")
    candidates = {"hub": HUB_POD, "proxy": PROXY_POD, "user": USER_POD, "autohttps": AUTOHTTPS_POD,
                  "user-scheduler": SCHEDULER_POD}  # fmt: skip
    (rule,) = policy["spec"]["ingress"]
    assert _ports(rule) == {("http", "TCP")}
    assert set().union(*(_peer_targets(p, candidates) for p in rule["from"])) == {"hub", "proxy", "user"}
    assert "Egress" in policy["spec"]["policyTypes"]
    egress_ports = {port for r in policy["spec"]["egress"] for port in _ports(r)}
    assert egress_ports == {
        (53, "UDP"),
        (53, "TCP"),
        (5432, "TCP"),
        (8081, "TCP"),
        (443, "TCP"),
        (6443, "TCP"),
    }


def test_checkpoint_job_accepts_nothing(render: Render) -> None:
    manifests = render({})
    (_, meta, _) = next(p for p in manifests.pod_specs() if "checkpoint" in p[0])
    (policy,) = _policies_selecting(manifests, meta["labels"], "Ingress")
    assert policy["spec"].get("ingress", []) == []
    assert {port for r in policy["spec"]["egress"] for port in _ports(r)} == {
        (53, "UDP"),
        (53, "TCP"),
        (5432, "TCP"),
    }

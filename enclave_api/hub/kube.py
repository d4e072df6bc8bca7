"""Notebook sessions in the Kubernetes deployment (``helm/enclave``, zero-to-jupyterhub + KubeSpawner).

Two sides, one concept — a session's life on Kubernetes:

* API side, :class:`KubernetesSessionControl`: the session control plug-in that ends a session's
  server by deleting the user's pod. It finds the pod by the labels KubeSpawner 7 sets
  (:func:`pod_selector`), so it works even while the hub is down. The ``kubernetes`` client is
  imported only when this plug-in is built (the optional extra ``cluster``).
* Hub side, :class:`KubeSessionHooks`: KubeSpawner's ``pre_spawn_hook`` and ``post_stop_hook``. They
  do for a pod what :class:`~enclave_api.hub.spawner.SandboxSpawner` does for a local sandbox: refuse
  a researcher the enclave refuses, open the enclave session and hand its credential to the pod
  (``ENCLAVE_API_URL``, ``ENCLAVE_API_TOKEN``, ``ENCLAVE_SESSION_ID``), end it when the server stops.
  The chart's ``hub.extraConfig`` calls :func:`configure_hub`.

Sessions get no DNS (a resolver that recurses to the internet is a way out): the hub hands pods the
API and hub addresses as IPs, from the Kubernetes service variables of its own pod
(:func:`service_url`). A pod's address is only known once the pod exists, after its environment is
fixed, so a cluster session's credential is not bound to an address (``address`` None); the
NetworkPolicies of the chart are what keep it inside the cluster.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import string
from collections.abc import Mapping
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from traitlets import Instance, Unicode, default
from traitlets.config import Config, LoggingConfigurable

from enclave_api.errors import ConfigurationError
from enclave_api.hub.control import SessionControl
from enclave_api.hub.enclave import EnclaveHubClient, EnclaveRefused

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

log = logging.getLogger("enclave.sessions")

#: Labels KubeSpawner 7 puts on every user pod (``_build_pod_labels``); the values are label slugs.
COMPONENT_LABEL = "component"
USER_POD_COMPONENT = "singleuser-server"
USERNAME_LABEL = "hub.jupyter.org/username"
SERVERNAME_LABEL = "hub.jupyter.org/servername"
#: Annotations carry the names unescaped: the exact check after the (slug-based) label selection.
USERNAME_ANNOTATION = "hub.jupyter.org/username"
SERVERNAME_ANNOTATION = "hub.jupyter.org/servername"

_LABEL_CHARS = re.compile(r"[a-z0-9._-]+", re.IGNORECASE)
_ALPHANUM = frozenset(string.ascii_letters + string.digits)
_NOT_ALPHANUM_LOWER = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 8
_SLUG_MAX = 32


def _is_valid_label(value: str) -> bool:
    if not value:
        return True
    return (
        len(value) <= 63
        and value[0] in _ALPHANUM
        and value[-1] in _ALPHANUM
        and _LABEL_CHARS.fullmatch(value) is not None
    )


def _safe_name(name: str, max_length: int) -> str:
    safe = _NOT_ALPHANUM_LOWER.sub("-", name.lower())
    safe = safe.lstrip("-")[:max_length].rstrip("-")
    if safe and safe[0] not in string.ascii_lowercase:
        safe = "x-" + safe[: max_length - 2]
    return safe or "x"


def label_value(name: str) -> str:
    """The label value KubeSpawner 7 gives a user or server name (its ``safe_slug`` for labels).

    A valid label value without ``--`` is kept as is; anything else becomes a lowercase stub and
    a short hash of the name, ``<stub>---<sha256[:8]>`` (32 characters at most).
    """
    if "--" not in name and _is_valid_label(name):
        return name
    digest = hashlib.sha256(name.encode("utf8")).hexdigest()[:_HASH_LENGTH]
    return f"{_safe_name(name, _SLUG_MAX - _HASH_LENGTH - 3)}---{digest}"


def pod_selector(user_id: str, server: str) -> str:
    """Label selector of the pod of ``user_id``'s server ``server`` (``""``: the default server)."""
    return ",".join(
        (
            f"{COMPONENT_LABEL}={USER_POD_COMPONENT}",
            f"{USERNAME_LABEL}={label_value(user_id)}",
            f"{SERVERNAME_LABEL}={label_value(server)}",
        )
    )


class KubernetesSessionControl(SessionControl):
    """Stops a session's server by deleting its pod through the Kubernetes API.

    The hub notices the pod is gone and records the server as stopped (its ``post_stop_hook`` ends
    the enclave session, already ended here). Needs ``list`` and ``delete`` on pods in the namespace
    (the chart's Role for the API's service account).
    """

    def __init__(
        self,
        namespace: str,
        *,
        api: CoreV1Api | None = None,
        in_cluster: bool = True,
        grace_period_seconds: int = 1,
        timeout: float = 10.0,
    ) -> None:
        if api is None:
            from kubernetes import client, config

            try:
                if in_cluster:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                else:
                    config.load_kube_config()  # type: ignore[no-untyped-call]
            except config.ConfigException as exc:
                where = "the pod's service account" if in_cluster else "~/.kube/config"
                raise ConfigurationError(f"no Kubernetes API credentials from {where}: {exc}") from exc
            api = client.CoreV1Api()
        self.api = api
        self.namespace = namespace
        # KubeSpawner's own default: the server gets SIGTERM and a second before it is killed.
        self.grace_period_seconds = grace_period_seconds
        self.timeout = timeout

    def stop_server(self, user_id: str, server: str) -> bool:
        """Delete the server's pod; True once deleting or gone, False on an API error (retried)."""
        from kubernetes.client.exceptions import OpenApiException
        from urllib3.exceptions import HTTPError

        selector = pod_selector(user_id, server)
        try:
            pods = self.api.list_namespaced_pod(
                self.namespace, label_selector=selector, _request_timeout=self.timeout
            ).items
        except (OpenApiException, HTTPError, OSError) as exc:
            log.warning(
                "could not list the user's pods to stop a server",
                extra={"user": user_id, "server": server, "error": str(exc)[:200]},
            )
            return False
        # The label values are slugs (a long or unusual name is hashed): match the exact names too.
        names = [
            pod.metadata.name
            for pod in pods
            if pod.metadata is not None
            and pod.metadata.name
            and (pod.metadata.annotations or {}).get(USERNAME_ANNOTATION) == user_id
            and (pod.metadata.annotations or {}).get(SERVERNAME_ANNOTATION, "") == server
        ]
        # No pod: nothing runs (a pod the hub creates later starts with its credential already revoked).
        return all(self._delete(name, user_id, server) for name in names)

    def _delete(self, name: str, user_id: str, server: str) -> bool:
        from kubernetes.client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError

        try:
            self.api.delete_namespaced_pod(
                name,
                self.namespace,
                grace_period_seconds=self.grace_period_seconds,
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return True  # already gone
            log.warning(
                "the Kubernetes API refused to delete a user pod",
                extra={"pod": name, "user": user_id, "status": exc.status, "reason": exc.reason},
            )
            return False
        except (OpenApiException, HTTPError, OSError) as exc:
            log.warning(
                "could not reach the Kubernetes API to delete a user pod",
                extra={"pod": name, "user": user_id, "error": str(exc)[:200]},
            )
            return False
        log.info(
            "deleted the pod of an ended notebook session",
            extra={"pod": name, "user": user_id, "server": server, "namespace": self.namespace},
        )
        return True


def service_url(environ: Mapping[str, str], service: str, scheme: str = "http") -> str:
    """``scheme://<ip>:<port>`` of a Service from the variables Kubernetes sets in a pod for it
    (``<NAME>_SERVICE_HOST`` / ``_PORT``); ValueError naming what is missing."""
    prefix = re.sub(r"[^A-Z0-9]", "_", service.upper())
    host, port = environ.get(f"{prefix}_SERVICE_HOST"), environ.get(f"{prefix}_SERVICE_PORT")
    if not host or not port:
        raise ValueError(
            f"no {prefix}_SERVICE_HOST/_PORT: the Service {service} did not exist when this pod "
            "started (restart the pod once it does)"
        )
    address = ip_address(host)  # sessions get no DNS, so this must be an address
    netloc = f"[{address}]" if address.version == 6 else str(address)
    return f"{scheme}://{netloc}:{int(port)}"


class KubeEnclaveHubClient(EnclaveHubClient):
    """The hub's enclave client plus the session listing the hooks need (configured as
    ``c.EnclaveHubClient``, like its base)."""

    async def open_sessions(self, user_id: str, server: str) -> list[str]:
        """Ids of the open enclave sessions of ``user_id``'s server ``server``."""
        response = await self._call("GET", "/v1/sessions", params={"open": "true", "user": user_id})
        if response.status_code != 200:
            raise EnclaveRefused(response.status_code, self._problem(response))
        return [str(record["id"]) for record in response.json() if record["server"] == server]


class KubeSessionHooks(LoggingConfigurable):
    """KubeSpawner hooks that open an enclave session for each user pod and end it with the pod."""

    session_api_url = Unicode(
        help="""URL of the enclave API as user pods reach it: an IP address, since sessions have no DNS.

        Unset: :func:`configure_hub` takes the ClusterIP of the `api_service` Service from the hub
        pod's service variables.
        """,
    ).tag(config=True)

    api_service = Unicode(
        "enclave-api", help="Name of the enclave API's Service (for the default session_api_url)."
    ).tag(config=True)

    enclave = Instance(KubeEnclaveHubClient, help="The enclave API client (configure c.EnclaveHubClient).")

    @default("enclave")
    def _default_enclave(self) -> KubeEnclaveHubClient:
        return KubeEnclaveHubClient(parent=self)

    async def pre_spawn(self, spawner: Any) -> None:
        """Refuse a user the enclave refuses; else open the session and give the pod its credential."""
        user_id, server = spawner.user.name, spawner.name
        user = await self.enclave.user(user_id)
        if user is None:
            raise EnclaveRefused(403, f"{user_id} is not an enclave account")
        if user.get("session_refused"):
            raise EnclaveRefused(403, str(user["session_refused"]))
        # No address: the pod's is not known before the pod exists (see the module docstring).
        started = await self.enclave.start_session(user_id, server, None)  # type: ignore[arg-type]
        spawner.environment = {
            **spawner.environment,
            "ENCLAVE_API_URL": self.session_api_url,
            "ENCLAVE_API_TOKEN": str(started["token"]),
            "ENCLAVE_SESSION_ID": str(started["id"]),
        }
        self.log.info(
            "Enclave session %s for %s/%s (grants %s)", started["id"], user_id, server, started["grants"]
        )

    async def post_stop(self, spawner: Any) -> None:
        """End every open enclave session of this server (also those a restarted hub forgot)."""
        user_id, server = spawner.user.name, spawner.name
        try:
            for session_id in await self.enclave.open_sessions(user_id, server):
                await self.enclave.end_session(session_id)
        except EnclaveRefused as exc:
            # The credential still ends with its grants or its lifetime; the next spawn supersedes it.
            self.log.error("Could not end the enclave sessions of %s/%s: %s", user_id, server, exc)


def configure_hub(c: Config, environ: Mapping[str, str] = os.environ) -> KubeSessionHooks:
    """Wire the hooks into KubeSpawner and point user pods at the hub and the API by address.

    Called from the chart's ``hub.extraConfig`` with the hub's ``c``; ValueError (the hub does not
    start) when a Service address is missing.
    """
    hooks = KubeSessionHooks(config=c)
    if not hooks.session_api_url:
        hooks.session_api_url = service_url(environ, hooks.api_service)
    c.KubeSpawner.pre_spawn_hook = hooks.pre_spawn
    c.KubeSpawner.post_stop_hook = hooks.post_stop
    # JUPYTERHUB_API_URL of user pods (and the proxy's route to the hub): the hub Service's ClusterIP.
    c.JupyterHub.hub_connect_url = service_url(environ, "hub")
    return hooks

"""Jupyter Server lock-down of notebook sessions: no download, no export, no raw file serving.

The network rules of the sandbox are the real barrier; this removes the one-click ways of pulling
files out through the browser so that outputs leave through the egress airlock instead. Files in
this directory are the whole lock-down, laid out like a Jupyter config directory:

* ``jupyter_server_config.json`` — loads this module as a Jupyter Server *extra service* (a
  ``.d`` directory would not do: Jupyter Server merges only ``jpserver_extensions`` from those).
  It also turns off ``jupyter_lsp``: the runtime has no language servers, and looking for them
  costs every server start. Extra services are routed before the default handlers, so the handlers below
  shadow ``/files/`` (raw bytes, also behind JupyterLab's *Download*), ``/nbconvert/`` and
  ``/api/nbconvert`` (*Export Notebook As…*) and ``/view/`` with a plain 403.
* ``labconfig/page_config.d/enclave-lockdown.json`` — disables JupyterLab's download, export,
  open-in-browser-tab and extension-manager plugins, so the commands are not offered at all, and
  the news announcements (they would only try to reach jupyter.org).

``scripts/build-runtime.sh`` copies both into ``<runtime>/etc/jupyter`` (the environment level of
the Jupyter config path, read-only inside the sandbox; the spawner also disables user-level config);
a container image copies them to ``/etc/jupyter`` and installs this package. What it cannot stop: the
contents API (``/api/contents``) that JupyterLab needs to open a file, and what a researcher sees on
screen. Both stay inside the enclave's browser session; nothing reaches another network.

Imports only Tornado: this module runs inside the session runtime, which has none of the service's
dependencies.
"""

from __future__ import annotations

from typing import Any

from tornado import web

#: URL patterns (relative to the server's base URL) answered with 403.
BLOCKED_PATTERNS = (r"/files/.*", r"/nbconvert/.*", r"/api/nbconvert.*", r"/view/.*")

FORBIDDEN_MESSAGE = (
    "Blocked in the enclave: files leave only through the egress airlock "
    "(enclave_api.client, egress request)."
)


class ForbiddenHandler(web.RequestHandler):
    """Answers every method with 403 and a short reason."""

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(FORBIDDEN_MESSAGE)

    def check_xsrf_cookie(self) -> None:
        """Nothing is ever done here, so no XSRF check is needed to refuse."""


#: Read by Jupyter Server for every module listed in ``ServerApp.extra_services``.
default_handlers: list[tuple[str, type[web.RequestHandler], dict[str, Any]]] = [
    (pattern, ForbiddenHandler, {}) for pattern in BLOCKED_PATTERNS
]

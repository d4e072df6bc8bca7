"""Notebook sessions: the local sandbox spawner for JupyterHub and the session lock-down.

* :mod:`enclave_api.hub.sandbox` — Linux primitives: network namespace + veth + nftables, cgroup v1
  limits (rlimit fallback), per-user uid and home, the bubblewrap command line, leftover cleanup.
* :mod:`enclave_api.hub.spawner` — :class:`~enclave_api.hub.spawner.SandboxSpawner`, the JupyterHub
  plug-in built on them.
* :mod:`enclave_api.hub.lockdown` — Jupyter Server/JupyterLab config copied into the session runtime.

Nothing is imported here: the lock-down module is imported inside the session runtime, which has
neither JupyterHub's hub side nor the service's dependencies.
"""

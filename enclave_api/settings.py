"""The one settings object of the enclave service.

Every option is read from the environment (prefix ``ENCLAVE_``) or passed explicitly; nothing is read at
import time. :func:`Settings.database_url_resolved` turns the embedded default into a SQLite file in the
data directory.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "default", "xxx", ""})


class Mode(StrEnum):
    """Deployment mode: ``embedded`` generates its own secrets, ``production`` requires them."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Configuration of API, CLI and workers. Secrets have no defaults outside the embedded mode."""

    model_config = SettingsConfigDict(env_prefix="ENCLAVE_", extra="forbid")

    mode: Mode = Field(Mode.EMBEDDED, description="embedded (generates secrets) or production")
    data_dir: Path = Field(Path(".enclave"), description="Where the embedded default keeps its state")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite file `enclave.db` in the data dir"
    )
    host: str = Field("127.0.0.1", description="Address the API binds to")
    port: int = Field(8400, ge=1, le=65535, description="Port the API binds to")

    # Secrets. In production each must be given (directly or as a file path); the embedded mode
    # generates them on first run under data_dir/secrets with 0600 permissions.
    token_pepper: SecretStr | None = Field(None, description="HMAC key for API token hashes")
    pseudonym_key: SecretStr | None = Field(None, description="HMAC key for pseudonymised ids")
    kek_file: Path | None = Field(None, description="Key-encryption keyring (JSON) for datasets")
    audit_signing_key_file: Path | None = Field(None, description="Ed25519 PEM for checkpoints")
    key_provider: str = Field("local", description="Key provider plug-in for the dataset KEK")

    token_ttl_days: int = Field(30, ge=1, le=365, description="Default lifetime of API tokens")
    max_request_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="Largest accepted request body (413 above)"
    )
    max_json_bytes: int = Field(1024 * 1024, ge=1024, description="Largest accepted JSON body")
    max_grant_days: int = Field(365, ge=1, description="Longest access a request may ask for")
    max_epsilon: float = Field(10.0, gt=0, description="Largest ε a request may ask for")
    max_delta: float = Field(1e-5, ge=0, lt=1, description="Largest δ an access request may ask for")
    max_query_delta: float = Field(1e-6, ge=0, lt=1, description="Largest δ a single DP query may spend")
    audit_checkpoint_every: int = Field(
        256, ge=1, description="Sign a checkpoint whenever the log grows by this many events"
    )
    audit_checkpoint_seconds: float = Field(
        30.0, gt=0, description="…and at least this often while the API runs (and on shutdown)"
    )
    audit_sink: str = Field("file", description="Where checkpoints are published outside the DB")
    audit_sink_path: Path | None = Field(
        None, description="File of the `file` sink; default DATA_DIR/audit-checkpoints.jsonl"
    )
    log_json: bool = Field(True, description="Structured JSON logs on stderr")

    egress_max_file_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest file an egress request may carry (413 above)"
    )
    egress_max_files: int = Field(50, ge=1, le=1000, description="Most files in one egress request")
    egress_reviews: int = Field(
        1, ge=1, le=5, description="Custodian approvals per dataset unless its metadata says otherwise"
    )
    query_lease_minutes: float = Field(
        10.0,
        gt=0,
        description="A DP query unfinished after this long (its process on another machine) is failed "
        "as interrupted; on this machine a crashed query is failed at once",
    )
    recovery_check_seconds: float = Field(
        30.0, gt=0, description="How often the API looks for work a stopped process left unfinished"
    )
    egress_check_timeout_seconds: float = Field(
        300.0, gt=0, description="Automatic checks running longer block the request (as a failure)"
    )
    session_max_hours: float = Field(
        12.0, gt=0, le=168, description="Longest life of a notebook session's credential (then it respawns)"
    )
    session_check_seconds: float = Field(
        10.0, gt=0, description="How often sessions whose grants ended (expiry) are looked for and ended"
    )
    hub_api_url: str | None = Field(
        None,
        description="JupyterHub REST API (e.g. http://127.0.0.1:8081/hub/api); the API stops servers "
        "through it when a session must end. Unset: session credentials are still revoked at once.",
    )
    hub_api_token: SecretStr | None = Field(
        None, description="Token of the enclave-api service registered in JupyterHub (needs hub_api_url)"
    )
    session_control: Literal["auto", "jupyterhub", "kubernetes", "none"] = Field(
        "auto",
        description="How servers of ended sessions are stopped: jupyterhub (its REST API), kubernetes "
        "(delete the user's pod), none; auto: jupyterhub when hub_api_url and hub_api_token are set",
    )
    kubernetes_namespace: str | None = Field(
        None, description="Namespace of the user pods (session_control kubernetes; required there)"
    )
    kubernetes_in_cluster: bool = Field(
        True, description="Reach the Kubernetes API with the pod's service account (else ~/.kube/config)"
    )
    hub_service_prefix: str = Field(
        "/services/enclave-api",
        description="Path under which JupyterHub's proxy forwards to the API (the enclave-api service)",
    )
    hub_oauth_client_id: str = Field(
        "service-enclave-api", description="OAuth client id of the enclave-api service in JupyterHub"
    )
    web_login_hours: float = Field(
        12.0, gt=0, le=24 * 7, description="Lifetime of a browser login obtained through the hub"
    )
    auth_cache_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="How long an authenticated API token is remembered by an API process (0: off); a "
        "revocation is immediate in the process that made it, other processes see it within this time",
    )
    rate_limit_queries_per_minute: int = Field(
        60, ge=1, description="DP queries a user may run per minute (429 beyond, with Retry-After)"
    )
    rate_limit_egress_per_hour: int = Field(
        20, ge=1, description="Egress submissions (and resubmissions) a user may make per hour"
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins per username and caller address before logins pause"
    )
    login_max_failures_per_address: int = Field(
        50, ge=1, description="Failed logins per caller address (any username) before logins pause"
    )
    login_throttle_minutes: float = Field(
        15.0, gt=0, description="Window of the failed-login limits; attempts resume when it has passed"
    )
    pii_ner: bool = Field(
        False, description="Also run spaCy NER (names in English prose) at egress; findings go to review"
    )
    polars_streaming: bool = Field(
        True,
        description="Run the API process's Polars work, DP queries included, on Polars' streaming engine "
        "(POLARS_AUTO_NEW_STREAMING; about twice as fast on large datasets, less memory)",
    )

    @field_validator("token_pepper", "pseudonym_key", "hub_api_token")
    @classmethod
    def _reject_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if raw.strip().lower() in PLACEHOLDER_SECRETS or len(raw) < 32:
                raise ValueError("secret is a placeholder or shorter than 32 characters")
        return value

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def checkpoint_file(self) -> Path:
        return self.audit_sink_path or self.data_dir / "audit-checkpoints.jsonl"

    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'enclave.db').resolve()}"

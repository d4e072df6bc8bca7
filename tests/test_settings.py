"""Settings and secrets: generated in the embedded mode, required in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from enclave_api.errors import ConfigurationError
from enclave_api.secret_store import load_secrets
from enclave_api.settings import Mode, Settings


def test_embedded_mode_generates_private_secrets_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    first = load_secrets(settings)
    secrets_dir = settings.secrets_dir
    names = {p.name for p in secrets_dir.iterdir()}
    assert names == {"token_pepper", "pseudonym_key", "kek.json", "audit_signing_key.pem"}
    for path in secrets_dir.iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
    second = load_secrets(settings)
    assert first.token_pepper == second.token_pepper
    assert first.pseudonym_key == second.pseudonym_key != first.token_pepper
    assert (settings.data_dir / "audit-public-key.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")


def test_production_mode_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", mode=Mode.PRODUCTION)
    with pytest.raises(ConfigurationError) as info:
        load_secrets(settings)
    message = str(info.value)
    for name in (
        "ENCLAVE_TOKEN_PEPPER",
        "ENCLAVE_PSEUDONYM_KEY",
        "ENCLAVE_KEK_FILE",
        "ENCLAVE_AUDIT_SIGNING_KEY_FILE",
    ):
        assert name in message
    assert not settings.secrets_dir.exists(), "production never generates secrets"


def test_production_mode_with_configured_secrets(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path / "seed")
    load_secrets(embedded)  # produce a keyring and signing key to point at
    settings = Settings(
        data_dir=tmp_path / "prod",
        mode=Mode.PRODUCTION,
        token_pepper="p" * 8 + "0123456789abcdef0123456789abcdef",
        pseudonym_key="q" * 8 + "0123456789abcdef0123456789abcdef",
        kek_file=embedded.secrets_dir / "kek.json",
        audit_signing_key_file=embedded.secrets_dir / "audit_signing_key.pem",
    )
    secrets = load_secrets(settings)
    assert secrets.token_pepper.startswith(b"pppppppp")


def test_production_mode_with_a_missing_keyring_file(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "prod",
        mode=Mode.PRODUCTION,
        token_pepper="a" * 40,
        pseudonym_key="b" * 40,
        kek_file=tmp_path / "nope.json",
        audit_signing_key_file=tmp_path / "nope.pem",
    )
    with pytest.raises(ConfigurationError, match="missing audit signing key"):
        load_secrets(settings)


@pytest.mark.parametrize("value", ["changeme", "secret", "short-but-real"])
def test_placeholder_or_short_secrets_are_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, token_pepper=value)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("ENCLAVE_PORT", "9999")
    settings = Settings()
    assert settings.data_dir == tmp_path / "env"
    assert settings.port == 9999
    assert settings.database_url_resolved() == f"sqlite:///{(tmp_path / 'env' / 'enclave.db').resolve()}"

"""The token cache: hits skip the database, and revocation, expiry and lifetime are honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from enclave_api.api.app import create_app
from enclave_api.authcache import AuthCache
from enclave_api.context import Enclave
from enclave_api.models import ApiToken
from enclave_api.services import identity
from tests.conftest import bearer, session_token

NOW = datetime(2026, 11, 25, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_entries_live_for_their_lifetime_and_never_past_the_token() -> None:
    clock = Clock()
    cache: AuthCache[str] = AuthCache(10, clock)
    cache.put("h", "alice", "tok1", NOW + timedelta(hours=1))
    assert cache.get("h", NOW) == "alice"
    clock.t += 9.9
    assert cache.get("h", NOW) == "alice"
    clock.t += 0.2
    assert cache.get("h", NOW) is None  # lifetime over: looked up again
    cache.put("h", "alice", "tok1", NOW + timedelta(seconds=1))
    assert cache.get("h", NOW + timedelta(seconds=1)) is None  # the token itself expired


def test_a_barred_token_is_neither_served_nor_cached_again_until_any_stale_entry_is_gone() -> None:
    clock = Clock()
    cache: AuthCache[str] = AuthCache(10, clock)
    cache.put("h", "alice", "tok1", NOW + timedelta(hours=1))
    cache.bar("tok1")
    assert cache.get("h", NOW) is None
    cache.put("h", "alice", "tok1", NOW + timedelta(hours=1))  # a lookup that began before the revoke
    assert cache.get("h", NOW) is None
    clock.t += 21.1
    cache.put("h", "alice", "tok1", NOW + timedelta(hours=1))  # only a lookup after the commit gets here
    assert cache.get("h", NOW) == "alice"


def test_zero_seconds_turns_it_off() -> None:
    cache: AuthCache[str] = AuthCache(0)
    cache.put("h", "alice", "tok1", NOW + timedelta(hours=1))
    assert cache.get("h", NOW) is None


def test_revocation_is_immediate_here_and_within_the_lifetime_in_another_process(
    seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    other = Enclave.open(seeded_enclave.settings, migrate=False)  # a second API process on the same DB
    clock = Clock()
    other.auth_cache = AuthCache(10, clock)
    try:
        here, there = TestClient(create_app(enclave=seeded_enclave)), TestClient(create_app(enclave=other))
        auth = bearer(tokens["researcher"])
        assert here.get("/v1/me", headers=auth).status_code == 200
        assert there.get("/v1/me", headers=auth).status_code == 200  # now cached there
        token_id = _token_id(seeded_enclave, tokens["researcher"])
        with seeded_enclave.write() as session:
            identity.revoke_token(seeded_enclave, session, "admin", token_id)
        assert here.get("/v1/me", headers=auth).status_code == 401  # at once where it was revoked
        assert there.get("/v1/me", headers=auth).status_code == 200  # the other still remembers it…
        clock.t += 10.1
        assert there.get("/v1/me", headers=auth).status_code == 401  # …for at most its lifetime
    finally:
        other.close()


def test_session_credentials_are_checked_every_call(seeded_enclave: Enclave) -> None:
    client = TestClient(create_app(enclave=seeded_enclave))
    credential = session_token(seeded_enclave, "minji.park")
    assert client.get("/v1/me", headers=bearer(credential)).status_code == 200
    session_token(seeded_enclave, "minji.park")  # a new session ends the first
    assert client.get("/v1/me", headers=bearer(credential)).status_code == 401


def _token_id(enclave: Enclave, token: str) -> str:
    from sqlalchemy import select

    with enclave.read() as session:
        hashed = identity.token_hash(enclave.secrets.token_pepper, token)
        return session.scalars(select(ApiToken.id).where(ApiToken.token_hash == hashed)).one()

"""Schemathesis against the live OpenAPI of a running server, with every role's credential.

For every operation of the served ``/openapi.json``, Hypothesis generates requests — schema-valid
ones and, separately, invalid ones (wrong types, missing fields, out-of-range values) — and each is
sent to the uvicorn-served API on loopback with no credential, with each demo role's API token, and
with a notebook session's credential. Whatever is sent, the API must never answer 5xx, and every
documented response must match its schema and content type.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from enclave_api.api.app import create_app
from enclave_api.settings import Settings
from tests.conftest import seeded_copy, session_token
from tests.liveserver import serve

CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.content_type_conformance]
EXAMPLES = 10


def _cases() -> list[tuple[str, GenerationMode]]:
    """Every operation the API documents (the same app the live server serves), with valid inputs,
    and with invalid ones where it takes any input."""
    app = create_app(settings=Settings(data_dir=Path(tempfile.gettempdir()) / "enclave-openapi-only"))
    document = app.openapi()
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def fuzz_target(
    tmp_path_factory: pytest.TempPathFactory, _templates: Any, request: pytest.FixtureRequest
) -> Iterator[tuple[str, dict[str, str]]]:
    world = seeded_copy("sqlite", tmp_path_factory.mktemp("fuzz"), _templates, request)
    enclave = next(world)
    tokens: dict[str, str] = json.loads((enclave.data_dir / "demo-tokens.json").read_text())
    tokens["session"] = session_token(enclave, "minji.park")
    with serve(create_app(enclave=enclave)) as base:
        yield base, tokens
    next(world, None)


@pytest.fixture(scope="module")
def live_schema(fuzz_target: tuple[str, dict[str, str]]) -> Any:
    base, _ = fuzz_target
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


@pytest.mark.slow
@pytest.mark.parametrize(("label", "mode"), _cases(), ids=lambda v: str(v))
def test_no_server_error_and_responses_match_the_schema(
    label: str, mode: GenerationMode, live_schema: Any, fuzz_target: tuple[str, dict[str, str]]
) -> None:
    base, tokens = fuzz_target
    operation = live_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the live server's OpenAPI"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: schemathesis.Case) -> None:
        for token in (None, *tokens.values()):
            headers = dict(case.headers or {})
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)

    fuzz()

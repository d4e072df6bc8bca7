"""Every DP engine test runs on both Polars engines: the default in-memory one and the streaming one
the API server selects (``polars_streaming``; Polars and OpenDP read the variable at each collect)."""

from __future__ import annotations

import pytest

STREAMING_VARIABLE = "POLARS_AUTO_NEW_STREAMING"


@pytest.fixture(autouse=True, params=["in-memory", "streaming"])
def polars_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "streaming":
        monkeypatch.setenv(STREAMING_VARIABLE, "1")
    else:
        monkeypatch.delenv(STREAMING_VARIABLE, raising=False)
    return str(request.param)

"""The notebook client: DP queries, budgets, records and exports from inside a session.

    from enclave_api.client import connect
    enclave = connect()                       # ENCLAVE_API_URL and ENCLAVE_API_TOKEN from the session
    result = (enclave.query("hanbit_registry")
              .where("age_at_diagnosis", ">=", 50)
              .group_by("stage")
              .count("n")
              .mean("tumor_size_mm", bounds=(0, 150), as_="mean_size")
              .run(epsilon=0.5))
    result.frame                              # a Polars DataFrame (result.to_pandas() if pandas exists)
    result.release_id, result.accuracy, result.budget
    enclave.export(result, "stage_counts.csv")   # CSV + stage_counts.csv.release.json (signed)

Only declarative JSON leaves the notebook; the enclave validates and compiles it server-side.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pyarrow as pa


class EnclaveAPIError(Exception):
    """An API error, carrying the problem document (status, title, detail and extra fields)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}")
        self.problem = problem
        self.status = int(problem.get("status", 0))


@dataclass(frozen=True)
class ReleaseResult:
    """A DP release: the noisy table plus what proves where it came from."""

    release_id: str
    frame: pl.DataFrame
    epsilon: float
    delta: float
    accuracy: dict[str, float]
    signature: str
    budget: dict[str, float]

    def to_pandas(self) -> Any:
        table = self.frame.to_pandas()
        table.attrs["release_id"] = self.release_id
        return table

    def _repr_html_(self) -> str:  # pragma: no cover - notebook display
        return (
            f"<p>release <code>{self.release_id}</code> · ε={self.epsilon:g} δ={self.delta:g} · "
            f"budget left ε={self.budget.get('epsilon_remaining', 0):g}</p>" + self.frame._repr_html_()
        )


@dataclass
class QueryBuilder:
    """Builds the declarative query spec (contract 4.3) step by step."""

    client: EnclaveClient
    dataset_id: str
    filters: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)

    def where(self, column: str, op: str, value: Any) -> QueryBuilder:
        self.filters.append({"column": column, "op": op, "value": value})
        return self

    def group_by(self, *columns: str) -> QueryBuilder:
        self.groups.extend(columns)
        return self

    def _add(self, fn: str, as_: str | None, column: str | None = None, **extra: Any) -> QueryBuilder:
        aggregate: dict[str, Any] = {"fn": fn, "as": as_ or (f"{fn}_{column}" if column else fn)}
        if column is not None:
            aggregate["column"] = column
        aggregate |= {k: list(v) if isinstance(v, tuple) else v for k, v in extra.items() if v is not None}
        self.aggregates.append(aggregate)
        return self

    def count(self, as_: str = "n") -> QueryBuilder:
        return self._add("count", as_)

    def sum(
        self, column: str, bounds: tuple[float, float] | None = None, as_: str | None = None
    ) -> QueryBuilder:
        return self._add("sum", as_, column, bounds=bounds)

    def mean(
        self, column: str, bounds: tuple[float, float] | None = None, as_: str | None = None
    ) -> QueryBuilder:
        return self._add("mean", as_, column, bounds=bounds)

    def quantile(
        self, column: str, q: float, bounds: tuple[float, float] | None = None, as_: str | None = None
    ) -> QueryBuilder:
        return self._add("quantile", as_, column, q=q, bounds=bounds)

    def histogram(self, column: str, edges: list[float], as_: str | None = None) -> QueryBuilder:
        return self._add("histogram", as_, column, edges=list(edges))

    def spec(self) -> dict[str, Any]:
        return {"filters": self.filters, "group_by": self.groups, "aggregates": self.aggregates}

    def run(self, epsilon: float, delta: float = 0.0, grant_id: str | None = None) -> ReleaseResult:
        """Spend (ε, δ) of the grant's budget on this query and return the release."""
        body: dict[str, Any] = {
            "dataset_id": self.dataset_id,
            "epsilon": epsilon,
            "delta": delta,
            "query": self.spec(),
        }
        if grant_id is not None:
            body["grant_id"] = grant_id
        doc = self.client._call("POST", "/v1/queries", json=body)
        frame = pl.DataFrame(
            [dict(zip(doc["columns"], row, strict=True)) for row in doc["rows"]], orient="row"
        ) if doc["rows"] else pl.DataFrame({c: [] for c in doc["columns"]})  # fmt: skip
        return ReleaseResult(
            release_id=doc["release_id"],
            frame=frame,
            epsilon=doc["epsilon"],
            delta=doc["delta"],
            accuracy=doc["accuracy"],
            signature=doc["signature"],
            budget=doc["budget"],
        )


class EnclaveClient:
    """Talks to the enclave API with the session's token."""

    def __init__(self, url: str, token: str, http: httpx.Client | None = None) -> None:
        self.http = http or httpx.Client(base_url=url, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"status": response.status_code, "title": "Error", "detail": response.text}
            raise EnclaveAPIError(problem)
        if response.headers.get("content-type", "").startswith("application/vnd.apache.arrow"):
            return response.content
        return response.json()

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/me")
        return result

    def datasets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/datasets")
        return result

    def grants(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/grants")
        return result

    def budget(self, dataset_id: str) -> list[dict[str, Any]]:
        """Remaining (ε, δ) of each of your active grants on ``dataset_id``."""
        return [
            {
                "grant_id": g["id"],
                "epsilon_remaining": g["epsilon_total"] - g["epsilon_spent"],
                "delta_remaining": g["delta_total"] - g["delta_spent"],
                "expires_at": g["expires_at"],
            }
            for g in self.grants()
            if g["dataset_id"] == dataset_id and g["status"] == "active"
        ]

    def query(self, dataset_id: str) -> QueryBuilder:
        return QueryBuilder(self, dataset_id)

    def records(self, dataset_id: str, grant_id: str | None = None) -> pl.DataFrame:
        """Pseudonymised records of a tier-``enclave`` dataset (inside a session only)."""
        params = {"grant_id": grant_id} if grant_id else None
        data = self._call("GET", f"/v1/datasets/{dataset_id}/records", params=params)
        table = pa.ipc.open_stream(data).read_all()
        return pl.DataFrame(table)

    def release(self, release_id: str) -> dict[str, Any]:
        """The stored, signed release: ``{"release": body, "signature", "key_id"}``."""
        result: dict[str, Any] = self._call("GET", f"/v1/releases/{release_id}")
        return result

    def export(self, release: ReleaseResult | str, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the release as CSV plus ``<path>.release.json``, the signed manifest that the egress
        airlock checks (numbers identical, signature valid, release yours)."""
        release_id = release if isinstance(release, str) else release.release_id
        signed = self.release(release_id)
        body = signed["release"]
        target = Path(path)
        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(body["columns"])
            writer.writerows(body["rows"])
        manifest = target.with_name(target.name + ".release.json")
        manifest.write_text(json.dumps(signed, indent=2, ensure_ascii=False), encoding="utf-8")
        return target, manifest

    def submit_egress(
        self,
        paths: Sequence[str | os.PathLike[str]],
        justification: str,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        """Send files to the egress airlock; the answer carries the automatic checks and the status
        (``blocked`` with reasons, or ``in_review``). Include a release's ``.release.json`` manifest
        beside its CSV to have the numbers accepted as DP output."""
        data = {"justification": justification} | ({"project_id": project_id} if project_id else {})
        return self._send_files("/v1/egress-requests", paths, data)

    def resubmit_egress(
        self, request_id: str, paths: Sequence[str | os.PathLike[str]], justification: str
    ) -> dict[str, Any]:
        """After a custodian asked for changes: send the revised files (a new round of checks and
        reviews); the answer is the request with its new checks."""
        path = f"/v1/egress-requests/{request_id}/resubmit"
        return self._send_files(path, paths, {"justification": justification})

    def _send_files(
        self, path: str, paths: Sequence[str | os.PathLike[str]], data: dict[str, str]
    ) -> dict[str, Any]:
        handles = [open(name, "rb") for name in paths]  # noqa: SIM115 - closed below
        try:
            files = [
                ("files", (Path(name).name, handle)) for name, handle in zip(paths, handles, strict=True)
            ]
            result: dict[str, Any] = self._call("POST", path, files=files, data=data)
        finally:
            for handle in handles:
                handle.close()
        return result

    def egress(self, request_id: str | None = None) -> Any:
        """One egress request (checks, reviews, status), or the list of yours."""
        path = "/v1/egress-requests" + (f"/{request_id}" if request_id else "")
        return self._call("GET", path)

    def wait_egress(self, request_id: str, timeout: float = 120.0, interval: float = 1.0) -> dict[str, Any]:
        """Wait for the airlock's automatic checks of ``request_id`` and return the request.

        Asks every ``interval`` seconds while the status is ``submitted`` or ``checking``; the request
        returned is ``blocked`` (its ``checks`` say why), ``in_review`` or any later state. Raises
        :class:`TimeoutError` when the checks are still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            request: dict[str, Any] = self.egress(request_id)
            if request["status"] not in ("submitted", "checking"):  # the checks are done (4.6)
                return request
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"egress request {request_id} still {request['status']} after {timeout:g} s"
                )
            time.sleep(min(interval, left))

    def download_egress(self, request_id: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Save every file of a released request, plus its signed manifest, into ``directory``."""
        request = self.egress(request_id)
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        saved = []
        for file in request["files"]:
            response = self.http.request(
                "GET", f"/v1/egress-requests/{request_id}/files/{file['name']}", headers=self.headers
            )
            if response.status_code >= 400:
                raise EnclaveAPIError(response.json())
            if hashlib.sha256(response.content).hexdigest() != file["sha256"]:
                raise EnclaveAPIError(
                    {"status": 502, "title": "Integrity", "detail": f"{file['name']} corrupted"}
                )
            path = target / Path(file["name"]).name
            path.write_bytes(response.content)
            saved.append(path)
        manifest = target / f"{request_id}.manifest.json"
        manifest_doc = self._call("GET", f"/v1/egress-requests/{request_id}/manifest")
        manifest.write_text(json.dumps(manifest_doc, indent=2, ensure_ascii=False), encoding="utf-8")
        return [*saved, manifest]


def connect(url: str | None = None, token: str | None = None) -> EnclaveClient:
    """A client configured from the session environment (``ENCLAVE_API_URL``, ``ENCLAVE_API_TOKEN``)."""
    url = url or os.environ.get("ENCLAVE_API_URL")
    token = token or os.environ.get("ENCLAVE_API_TOKEN")
    if not url or not token:
        raise RuntimeError("set ENCLAVE_API_URL and ENCLAVE_API_TOKEN (done for you inside a session)")
    return EnclaveClient(url, token)

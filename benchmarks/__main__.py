"""``python -m benchmarks``: every benchmark, one after the other, figures printed as they come."""

from __future__ import annotations

import sys

from benchmarks import (
    bench_api_query,
    bench_audit_append,
    bench_audit_verify,
    bench_dp,
    bench_hub,
    bench_load,
    bench_pii,
    bench_sandbox,
)


def main() -> None:
    print("== audit: durable appends and proofs (SQLite, PostgreSQL) ==", flush=True)
    bench_audit_append.main([])
    print("\n== audit: verification of 1,000,000 events vs SHA-256 of the same bytes ==", flush=True)
    sys.argv = [sys.argv[0]]
    bench_audit_verify.main()
    print("\n== DP queries: analytic calibration vs OpenDP Context API (scale search) ==", flush=True)
    bench_dp.main()
    print("\n== DP queries end to end: POST /v1/queries on WDBC through a live server ==", flush=True)
    bench_api_query.main([])
    print(
        "\n== load: 200 users from a second process (catalog reads, egress polls, DP queries) ==", flush=True
    )
    bench_load.main([])
    print("\n== egress PII scanner: labelled corpus quality; speed vs Presidio's batch engine ==", flush=True)
    bench_pii.main([])
    print("\n== notebook sandboxes: spawn-to-ready, stop, 10 concurrent sessions ==", flush=True)
    bench_sandbox.main([])
    print(
        "\n== notebook sessions through JupyterHub: login-free spawn-to-ready with every layer ==", flush=True
    )
    bench_hub.main([])


if __name__ == "__main__":
    main()

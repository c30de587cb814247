"""The OpenAPI document is the contract (issue 13, findings 3, 4 and 6): schemathesis generates
requests from it against a live server, on SQLite and on PostgreSQL, and fails on any 5xx, any
undocumented status code, header, content type or body, and any wrong ``Allow`` header.

Bounded: a fixed seed and a few examples per operation (about half a minute per database here);
``COLDBREW_FUZZ_EXAMPLES`` and ``COLDBREW_FUZZ_SEED`` widen or vary a run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from servicekit import CATALOGUE, USERS, WRITE, WRITE_KEY

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,unsupported_method,"
    "allow_header_conformance"
)


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("needs schemathesis: pip install 'coldbrew[dev]'")
    return [found]


def _seed(base: str) -> None:
    """Some real rows, so generated ids sometimes name something that exists."""
    with httpx.Client(base_url=base, headers=WRITE) as api:
        assert api.post("/items/batch", json={"items": CATALOGUE}).status_code == 200
        assert api.post("/users/batch", json={"users": USERS}).status_code == 200


def fuzz(base: str, tmp_path: Path) -> str:
    """Run schemathesis against ``base``; its whole report, asserting it found nothing."""
    command = [
        *_schemathesis(),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"X-API-Key: {WRITE_KEY}",
        "--checks",
        CHECKS,
        "--max-examples",
        os.environ.get("COLDBREW_FUZZ_EXAMPLES", "10"),
        "--seed",
        os.environ.get("COLDBREW_FUZZ_SEED", "13"),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    return report


def generated(report: str) -> int:
    found = re.search(r"(\d+) generated", report)
    assert found, report[-2000:]
    return int(found.group(1))


def test_fuzzing_finds_no_5xx_and_no_schema_violation(
    db_url: str, serve_live: Callable[..., str], tmp_path: Path
) -> None:
    database = "postgres" if db_url.startswith("postgres") else "sqlite"
    base = serve_live(db_url=db_url)
    _seed(base)
    report = fuzz(base, tmp_path)
    cases = generated(report)
    assert cases >= 200, report[-2000:]
    print(f"schemathesis on {database}: {cases} cases, no failures")

"""/docs and /redoc work offline: every script and stylesheet they load is served by the app."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.text
    assert not re.search(r"https?://", html.replace("http://www.w3.org", "")), html
    assets = set(ASSET.findall(html))
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, f"{page} loads no script: {html}"
    for url in assets:
        assert url.startswith("/"), url
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        assert len(fetched.content) > 100, url
    assert "/openapi.json" in html
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "coldbrew"

"""Shared data and helpers for the service tests (imported by conftest and the tests)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

from fastapi.testclient import TestClient

from coldbrew.config.settings import Settings

WRITE_KEY = "test-write-key-4d9c"
WRITE = {"X-API-Key": WRITE_KEY}

CATALOGUE = [
    {
        "id": "jacket",
        "title": "Lightweight spring jacket",
        "description": "A breathable shell jacket for spring outings",
        "attributes": {"category": "clothing", "price": 59.0},
    },
    {
        "id": "parka",
        "title": "Insulated winter parka",
        "description": "Warm down parka with a hood for deep winter",
        "attributes": {"category": "clothing", "price": 189.0},
    },
    {
        "id": "boots",
        "title": "Waterproof hiking boots",
        "description": "Leather boots for mountain hiking trails",
        "attributes": {"category": "shoes"},
    },
    {
        "id": "tent",
        "title": "Ultralight camping tent",
        "description": "Two person tent for camping and hiking trips",
        "attributes": {"category": "outdoor"},
    },
    {
        "id": "keyboard",
        "title": "Mechanical gaming keyboard",
        "description": "Keyboard with brown switches for gaming",
        "attributes": {"category": "electronics"},
    },
    {
        "id": "mouse",
        "title": "Wireless gaming mouse",
        "description": "Light mouse for competitive gaming",
        "attributes": {"category": "electronics"},
    },
    {
        "id": "skillet",
        "title": "Cast iron skillet",
        "description": "A heavy pan for cooking steak at home",
        "attributes": {"category": "kitchen"},
    },
    {
        "id": "scifi",
        "title": "三体 科幻小说",
        "description": "一本关于外星文明的科幻小说",
        "attributes": {"category": "books"},
    },
    {
        "id": "cookbook",
        "title": "家常菜 食谱",
        "description": "简单好做的家常菜食谱",
        "attributes": {"category": "books"},
    },
]
USERS = [
    {"id": "hiker", "text": "I love hiking and camping", "attributes": {"age": "25-34"}},
    {"id": "gamer", "text": "", "attributes": {"age": "18-24", "occupation": "student"}},
]
INTERACTIONS = [
    {"id": "i1", "user_id": "hiker", "item_id": "boots", "event": "purchase", "timestamp": 1.0},
    {"id": "i2", "user_id": "gamer", "item_id": "keyboard", "event": "like", "timestamp": 1.0},
]


def make_settings(db_url: str, **kwargs: Any) -> Settings:
    kwargs.setdefault("write_key_hashes", Settings.keys(WRITE_KEY))
    # the tests send bursts from one client; rate limits have their own tests
    kwargs.setdefault("rate_limit", "100000/second")
    kwargs.setdefault("key_rate_limit", "100000/second")
    kwargs.setdefault("rate_limit_delay", 0.0)
    # the environment of the test run is not read: only the defaults and these
    return Settings.from_env({}, db_url=db_url, **kwargs)


def load_catalogue(client: TestClient) -> None:
    for path, key, rows in (
        ("/items/batch", "items", CATALOGUE),
        ("/users/batch", "users", USERS),
        ("/interactions/batch", "interactions", INTERACTIONS),
    ):
        response = client.post(path, json={key: rows}, headers=WRITE)
        assert response.status_code == 200, response.text


def counts(client: TestClient) -> dict[str, int]:
    found: dict[str, int] = client.app.state.engine.store.counts()  # type: ignore[attr-defined]
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str, **headers: str) -> Any:
    """GET ``url`` and parse its JSON body (HTTP errors raise)."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
"""A Python that ignores SIGINT, then runs its arguments as a command line: the ignoring
survives the exec, as in a background job that a non-interactive shell started."""


def serve_process(
    args: list[str], env: dict[str, str], *, ignoring_sigint: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """``coldbrew serve ARGS`` as a process on a free port, once it answers /readyz (bounded
    wait; a process that exits or never gets ready fails with its output); ``ignoring_sigint``:
    started with SIGINT ignored (:data:`IGNORING_SIGINT`)."""
    port = free_port()
    command = [sys.executable, "-m", "coldbrew", "serve", *args, "--port", str(port)]
    if ignoring_sigint:
        command = [sys.executable, "-c", IGNORING_SIGINT, *command[1:]]
    # its output buffered as a pipe's is, whatever the runner's environment says
    env = {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if get_json(f"{url}/readyz")["status"] == "ready":
                return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(f"no service: {server.communicate()}")

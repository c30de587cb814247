"""Storage privacy and durability (issue 13, findings 3, 4 and 7): no SQL parameter in any log line
or error message, database errors named by kind only, durability modes, and a forgotten user's
text gone from the SQLite files themselves."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, load_catalogue, make_settings
from sqlalchemy import text

from coldbrew.config.settings import Settings
from coldbrew.serve import create_app
from coldbrew.store import Interaction, Store, User
from coldbrew.text import HashingEncoder

SECRET = "zebra-measles-7731"


def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG, SQLAlchemy's too (it sets its own to WARNING on import)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")


def _all_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records)


def test_failing_writes_quote_no_parameter(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(db_url)
    bad = Interaction(f"i-{SECRET}", f"u-{SECRET}", "item", "click", None)  # type: ignore[arg-type]
    _log_everything(caplog)
    with store.transaction() as session:
        store.upsert_users(session, [User(f"ok-{SECRET}", f"my {SECRET} story")])
    refused_value = pytest.raises(ValueError, match="the database refused a value")
    with refused_value as refused, store.transaction() as session:
        store.upsert_interactions(session, [bad])
    assert any(r.name.startswith("sqlalchemy") for r in caplog.records), "statements were logged"
    assert SECRET not in str(refused.value) and refused.value.__cause__ is None
    assert SECRET not in _all_logged(caplog)
    assert "[SQL parameters hidden" in _all_logged(caplog)
    store.close()


def test_postgres_nul_is_a_value_error_naming_no_value(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Below the request schema (which refuses NUL first), the store still names no value:
    PostgreSQL cannot hold NUL in text; SQLite can, so there the row is stored."""
    store = Store(db_url)
    _log_everything(caplog)
    try:
        with store.transaction() as session:
            store.upsert_users(session, [User("nul", f"{SECRET}\x00")])
    except ValueError as exc:
        assert store.engine.dialect.name == "postgresql"
        assert SECRET not in str(exc) and store.users() == []
    else:
        assert store.engine.dialect.name == "sqlite"
    assert SECRET not in _all_logged(caplog)
    store.close()


@pytest.mark.parametrize(("mode", "level"), [("normal", 1), ("full", 2)])
def test_durability_sets_sqlite_synchronous(tmp_path: Path, mode: str, level: int) -> None:
    store = Store(str(tmp_path / "d.sqlite"), durability=mode)
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == level
        assert connection.execute(text("PRAGMA secure_delete")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability 'fast'"):
        Store(str(tmp_path / "d.sqlite"), durability="fast")
    with pytest.raises(ValueError, match="COLDBREW_DURABILITY='off'"):
        Settings.from_env({"COLDBREW_DURABILITY": "off"})


def _file_bytes(db: Path) -> bytes:
    found = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{db}{suffix}")
        if path.exists():
            found += path.read_bytes()
    return found


def test_forget_leaves_no_trace_in_the_sqlite_files(tmp_path: Path) -> None:
    db = tmp_path / "forget.sqlite"
    client = TestClient(create_app(make_settings(str(db)), encoder=HashingEncoder(256)))
    client.__enter__()
    load_catalogue(client)
    user = {"id": f"user-{SECRET}", "text": f"pregnant, {SECRET}", "attributes": {"note": SECRET}}
    assert client.post("/users", json=user, headers=WRITE).status_code == 200
    like = {"user_id": f"user-{SECRET}", "item_id": "tent", "event": "like"}
    assert client.post("/feedback", json=like, headers=WRITE).status_code == 200
    assert SECRET.encode() in _file_bytes(db), "the test must see the text before the forget"
    assert client.delete(f"/users/user-{SECRET}", headers=WRITE).status_code == 200
    assert SECRET.encode() not in _file_bytes(db)
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    client.__exit__(None, None, None)


def test_nan_never_reaches_the_store(client: TestClient) -> None:
    """Finding 4: a NaN timestamp was a 500 on SQLite; ±Infinity broke a user's history order."""
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = f'{{"user_id": "gamer", "item_id": "mouse", "timestamp": {raw}}}'
        response = client.post(
            "/interactions",
            content=body.encode(),
            headers={**WRITE, "content-type": "application/json"},
        )
        assert response.status_code == 422, (raw, response.text)
    history = [i.timestamp for i in client.app.state.engine.store.interactions()]  # type: ignore[attr-defined]
    assert all(math.isfinite(t) for t in history)


def test_interactions_read_back_their_contexts_as_written(db_url: str) -> None:
    """The bulk read decodes each context's JSON text itself (issue 29): nested values, words
    that spell ``null``, and no context (SQL NULL, JSON null or ``{}``) all come back as the
    record held them, oldest first."""
    nested = {"device": "mobile", "where": {"lat": 48.8, "tags": ["café", "null"]}, "n": 2}
    contexts: list[dict[str, Any] | None] = [nested, None, {}, {"text": "null"}]
    events = [
        Interaction(f"e{n}", "u", f"i{n}", "click", 10.0 - n, None, context)
        for n, context in enumerate(contexts)
    ]
    store = Store(db_url)
    with store.transaction() as session:
        store.upsert_interactions(session, events)
    with store.engine.begin() as connection:  # a row another writer left as SQL NULL
        connection.execute(
            text("UPDATE interactions SET context = NULL WHERE interaction_id = 'e1'")
        )
    read = store.interactions()
    assert [i.interaction_id for i in read] == ["e3", "e2", "e1", "e0"]
    assert [i.context for i in read] == [{"text": "null"}, None, None, nested]
    assert store.interactions("u") == read and store.interactions("nobody") == []
    store.close()

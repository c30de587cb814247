"""SQLite readiness checks the real file (issue 28, finding 3): after the database file was deleted,
replaced, truncated, overwritten or its folder moved, ``/readyz`` and writes answered 200 into a
file nobody would read again. Now both answer 503 with ``Retry-After`` at the next request."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servicekit import WRITE, load_catalogue, make_settings

from coldbrew.serve import create_app
from coldbrew.text import HashingEncoder


def _delete(db: Path) -> None:
    db.unlink()


def _replace(db: Path) -> None:
    other = db.with_name("other.sqlite")
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    os.replace(other, db)


def _truncate(db: Path) -> None:
    os.truncate(db, 0)


def _shorten(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)  # the header is intact, the pages are not


def _overwrite(db: Path) -> None:
    with open(db, "r+b") as file:  # the same inode and size, not a database any more
        file.write(b"\0" * 100)


def _move_folder(db: Path) -> None:
    db.parent.rename(db.parent.with_name("moved"))


DAMAGE = [_delete, _replace, _truncate, _shorten, _overwrite, _move_folder]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder / "shop.sqlite"


@pytest.fixture
def served(database: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(str(database), models_dir=str(tmp_path / "models"))
    with TestClient(create_app(settings, encoder=HashingEncoder(256))) as client:
        load_catalogue(client)
        yield client


def test_writes_that_grow_the_file_keep_it_ready(served: TestClient) -> None:
    rows = [{"id": f"n{n}", "title": f"Novel number {n} " + "x" * 400} for n in range(300)]
    assert served.post("/items/batch", json={"items": rows}, headers=WRITE).status_code == 200
    assert served.delete("/users/hiker", headers=WRITE).status_code == 200  # checkpoints the log
    lamp = {"id": "lamp", "title": "Camping lamp"}
    assert served.post("/items", json=lamp, headers=WRITE).status_code == 200
    assert served.get("/readyz").status_code == 200


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__.strip("_"))
def test_a_damaged_file_turns_readiness_and_writes_to_503(
    served: TestClient, database: Path, damage: Callable[[Path], None]
) -> None:
    assert served.get("/readyz").status_code == 200
    damage(database)
    ready = served.get("/readyz")  # the very next probe, well within the 5 s asked for
    assert ready.status_code == 503 and ready.json()["status"] == "database unreachable"
    assert ready.headers["retry-after"] == "5"
    lamp = {"id": "lamp", "title": "Camping lamp"}
    write = served.post("/items", json=lamp, headers=WRITE)
    assert write.status_code == 503, write.text
    assert "its file" in write.json()["detail"] and write.headers["retry-after"] == "5"
    assert str(database.parent) not in write.text  # the answer names no server path
    assert served.get("/items/lamp").status_code == 404  # not served as if it were stored
    assert served.post("/recommend", json={"text": "tent"}).status_code == 200  # from memory


def test_a_real_server_notices_the_file_deleted(
    serve_live: Callable[..., str], database: Path
) -> None:
    base = serve_live(str(database))
    assert httpx.get(f"{base}/readyz").status_code == 200
    database.unlink()
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    user = httpx.post(f"{base}/users", json={"id": "ana", "text": "tents"}, headers=WRITE)
    assert user.status_code == 503

"""``coldbrew demo`` and ``coldbrew serve`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coldbrew.cli.main import build_parser, main
from coldbrew.store import Store


def test_demo_prints_every_mode_and_the_new_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.sqlite"
    assert main(["demo", "--encoder", "hashing", "--db", str(db), "--no-serve", "-k", "2"]) == 0
    out = capsys.readouterr().out
    for label in ("free text (English)", "free text (Chinese)", "attributes only", "two clicks"):
        assert label in out
    assert "why:" in out
    assert "new item 'Packable rain jacket' reaches existing users" in out
    assert "model: hybrid v000001, learned from" in out  # the service's own hybrid
    assert "encoder: hashing-256+script-centred:" in out  # the name, not an object
    assert "People who liked “" in out  # a known user's reason cites CF where CF decided
    store = Store(str(db))
    assert {i.item_id for i in store.items()} >= {"en-001", "zh-013", "new-001"}
    assert len(store.users()) == 46 and len(store.interactions()) == 239
    store.close()
    assert (tmp_path / "demo.sqlite.models" / "CURRENT").read_text().strip() == "v000001"
    # loading again is idempotent: upserts by id
    assert main(["demo", "--encoder", "hashing", "--db", str(db), "--no-serve"]) == 0
    store = Store(str(db))
    assert store.counts()["interactions"] == 239
    store.close()


def test_serve_command_is_registered() -> None:
    args = build_parser().parse_args(["serve", "--db", "x.sqlite", "--port", "9001"])
    assert (args.db_url, args.port, args.host) == ("x.sqlite", 9001, "127.0.0.1")
    # a flag not given leaves the setting to COLDBREW_DURABILITY, else its default (normal)
    assert args.durability is None
    full = build_parser().parse_args(["serve", "--durability", "full"])
    assert full.durability == "full"


def test_serve_refuses_an_unsupported_database_in_one_line_before_any_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLDBREW_API_KEYS", raising=False)
    url = "mysql://shop:s3cret-pw@db.example/shop"
    assert main(["serve", "--db", url, "--encoder", "hashing", "--port", "9"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no "serving on", no fresh key
    assert err.count("\n") == 1 and "unsupported database mysql://" in err
    assert "SQLite" in err and "PostgreSQL" in err
    assert "s3cret-pw" not in err  # the URL's password is never echoed


def test_a_second_server_on_one_sqlite_file_stops_before_announcing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLDBREW_API_KEYS", raising=False)
    db = str(tmp_path / "shop.sqlite")
    # another process holds the file as a server does (holds in one process are shared)
    hold = (
        "import sys; from coldbrew.live.fleet import single_process; "
        "from coldbrew.store import database_url\n"
        f"with single_process(database_url({db!r})):\n"
        "    print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code = main(["serve", "--db", db, "--encoder", "hashing", "--port", "9"])
    finally:
        holder.communicate(timeout=30)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "served by another process" in err and err.count("\n") == 1


@pytest.mark.parametrize("ignoring", [False, True], ids=["foreground", "sigint-ignored"])
def test_ctrl_c_stops_the_service_with_code_130_and_no_traceback(
    tmp_path: Path, ignoring: bool
) -> None:
    """Ctrl-C (SIGINT) shuts the real ``coldbrew serve`` down and exits as the shell expects:
    uvicorn raises the interrupt again after its shutdown, which used to end in a traceback;
    started with SIGINT ignored (a script's background job, as the test runner may be), uvicorn
    still stops on it but cannot raise it again, which used to end in code 0."""
    import os
    import signal

    from servicekit import serve_process

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    env["COLDBREW_API_KEYS"] = "ctrl-c-test-key-5d1e2f"
    args = ["--db", str(tmp_path / "shop.sqlite"), "--encoder", "hashing"]
    server, _ = serve_process(args, env, ignoring_sigint=ignoring)
    try:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "serving on" in out

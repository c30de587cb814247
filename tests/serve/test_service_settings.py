"""Settings are checked at start (issue 13, finding 7): a malformed key entry stops the server with
a message naming it, the documentation's example key warns, and every limit must make sense."""

from __future__ import annotations

import logging

import pytest
from uvicorn.config import STARTUP_FAILURE

from coldbrew.cli.main import main
from coldbrew.serve.settings import Settings, hash_key


@pytest.mark.parametrize(
    "entry", ["sha256:", "sha256:not-hex", "sha256:" + "ab" * 31, "sha256:" + "g" * 64]
)
def test_malformed_hash_entries_stop_the_server(entry: str) -> None:
    with pytest.raises(ValueError, match=r"COLDBREW_API_KEYS entry 2 .*64 hex digits"):
        Settings.from_env({"COLDBREW_API_KEYS": f"good-key-123, {entry}"})
    with pytest.raises(ValueError, match="COLDBREW_READ_KEYS entry 1"):
        Settings.from_env({"COLDBREW_READ_KEYS": entry})


def test_a_valid_hash_entry_is_accepted_in_any_case() -> None:
    settings = Settings.from_env({"COLDBREW_API_KEYS": "sha256:" + hash_key("k3y").upper()})
    assert settings.can_write("k3y") and not settings.can_write("other")


def test_the_cli_refuses_to_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("COLDBREW_API_KEYS", "sha256:not-hex")
    assert main(["serve", "--db", f"{tmp_path}/x.sqlite", "--encoder", "hashing"]) == 2
    err = capsys.readouterr().err
    assert "coldbrew serve: error: COLDBREW_API_KEYS entry 1" in err and "64 hex" in err


def test_a_service_whose_encoder_cannot_load_exits_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    import huggingface_hub.constants

    # no network in the test, whatever the machine has: the hub answers nothing
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("COLDBREW_API_KEYS", "a-key-of-my-own-7f3e")
    argv = ["serve", "--db", f"{tmp_path}/x.sqlite", "--encoder", "coldbrew-tests/no-such-model"]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--runtime", "torch", "--port", "8799"])
    assert stopped.value.code == STARTUP_FAILURE  # uvicorn's: the app did not start
    logged = capfd.readouterr().err
    assert "ValueError: cannot load the encoder 'coldbrew-tests/no-such-model'" in logged
    assert "'default' (English MiniLM)" in logged


def test_the_documented_example_key_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="coldbrew.serve"):
        settings = Settings.from_env({"COLDBREW_API_KEYS": "change-me"})
    assert settings.can_write("change-me")
    assert any("example key 'change-me'" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coldbrew.serve"):
        Settings.from_env({"COLDBREW_API_KEYS": "a-key-of-my-own-7f3e"})
    assert not caplog.records


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COLDBREW_RATE_LIMIT", "lots"),
        ("COLDBREW_KEY_RATE_LIMIT", "5 per fortnight"),
        ("COLDBREW_FAILED_KEY_LIMIT", ""),
        ("COLDBREW_HEADER_TIMEOUT", "0"),
        ("COLDBREW_BODY_TIMEOUT", "soon"),
        ("COLDBREW_MAX_QUEUE", "-1"),
        ("COLDBREW_MAX_BODY_BYTES", "1MB"),
        ("COLDBREW_DURABILITY", "extra"),
        ("COLDBREW_RATE_LIMIT_DELAY", "-1"),
    ],
)
def test_bad_limits_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_limits_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "COLDBREW_RATE_LIMIT": "5/second",
            "COLDBREW_HEADER_TIMEOUT": "2.5",
            "COLDBREW_MAX_QUEUE": "4",
            "COLDBREW_DURABILITY": "full",
        }
    )
    assert (settings.rate_limit, settings.header_timeout, settings.max_queue) == (
        "5/second",
        2.5,
        4,
    )
    assert settings.durability == "full"

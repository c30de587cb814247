"""Settings are checked at start (issue 13, finding 7; issue 28, finding 5): a malformed, weak or
empty key entry stops the server with a message naming it (never the whole key), a set but empty
key setting is refused, and every limit must make sense."""

from __future__ import annotations

from pathlib import Path

import pytest
from uvicorn.config import STARTUP_FAILURE

from coldbrew.cli.main import main
from coldbrew.config.keys import key_problem, new_key
from coldbrew.config.settings import Settings, hash_key

GOOD = "good-key-1234567x"


@pytest.mark.parametrize(
    "entry", ["sha256:", "sha256:not-hex", "sha256:" + "ab" * 31, "sha256:" + "g" * 64]
)
def test_malformed_hash_entries_stop_the_server(entry: str) -> None:
    with pytest.raises(ValueError, match=r"COLDBREW_API_KEYS entry 2 .*64 hex digits"):
        Settings.from_env({"COLDBREW_API_KEYS": f"{GOOD}, {entry}"})
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


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("a-file", "'{dir}/a-file' (--models-dir, COLDBREW_MODELS_DIR) is a file, not a directory"),
        ("a-file/models", "cannot be made: '{dir}/a-file' is a file"),
    ],
)
def test_a_models_dir_that_cannot_be_one_stops_serve_in_one_line(
    where: str,
    problem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 28, finding 8: it ended in a traceback from the app's start-up."""
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("COLDBREW_API_KEYS", "a-key-of-my-own-7f3e")
    argv = ["serve", "--db", str(tmp_path / "x.sqlite"), "--encoder", "hashing"]
    assert main([*argv, "--models-dir", str(tmp_path / where)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("coldbrew serve: error: the models directory")
    assert problem.format(dir=tmp_path) in captured.err
    assert not (tmp_path / "x.sqlite").exists()  # refused before anything was opened


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


WEAK = [
    ("a", "has 1 characters: a key needs at least 16"),
    ("abc", "has 3 characters"),
    ("12345678", "has 8 characters"),
    ("change-me", "has 9 characters"),  # the old documentation example
    ("1234567890123456", "only digits"),
    ("aaaaaaaaaaaaaaaaaaaa", "fewer than 6 different characters"),
    ("abababababababababab", "fewer than 6 different characters"),
    ("good-key\twith-a-tab", "a tab at character 9"),
    ("good-key with-a-space", "a space at character 9"),
    ("good-key\x07-with-a-bell", "U+0007 at character 9"),
    ("schlüssel-mit-umlaut-1", "U+00FC at character 5"),
]


@pytest.mark.parametrize(("key", "problem"), WEAK)
@pytest.mark.parametrize("variable", ["COLDBREW_API_KEYS", "COLDBREW_READ_KEYS"])
def test_weak_keys_stop_the_server_naming_the_entry(key: str, problem: str, variable: str) -> None:
    with pytest.raises(ValueError, match=f"{variable} entry 2 ") as refused:
        Settings.from_env({variable: f"{GOOD},{key}"})
    message = str(refused.value)
    assert problem in message and "secrets.token_urlsafe" in message
    assert f"{key!r}" not in message
    if len(key) >= 8:  # shown masked: its first two characters, then one * per character
        assert repr(key[:2] + "*" * (len(key) - 2)) in message


@pytest.mark.parametrize("value", [f"{GOOD},,other-key-7654321y", f"{GOOD},", f",{GOOD}"])
def test_an_empty_entry_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"COLDBREW_API_KEYS entry [123] .*is empty"):
        Settings.from_env({"COLDBREW_API_KEYS": value})


@pytest.mark.parametrize("value", ["", " ", ",", " , "])
@pytest.mark.parametrize("variable", ["COLDBREW_API_KEYS", "COLDBREW_READ_KEYS"])
def test_a_set_but_empty_key_setting_is_refused(value: str, variable: str) -> None:
    with pytest.raises(ValueError, match=f"{variable} is set but holds no key"):
        Settings.from_env({variable: value})


def test_keys_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"entry 1 .*has 6 characters"):
        Settings.keys("reader")


def test_good_keys_pass_and_match_trimmed() -> None:
    settings = Settings.from_env({"COLDBREW_API_KEYS": f" {GOOD} , Zx9-ab_CD.ef~GH!12 "})
    assert settings.can_write(GOOD) and settings.can_write("Zx9-ab_CD.ef~GH!12")
    assert not Settings.from_env({}).write_key_hashes  # unset: no key (serve makes one)
    assert all(key_problem(new_key()) is None for _ in range(500))


def test_the_cli_refuses_an_empty_key_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    """It used to fall back in silence to a generated key."""
    monkeypatch.setenv("COLDBREW_API_KEYS", " , ")
    assert main(["serve", "--db", f"{tmp_path}/x.sqlite", "--encoder", "hashing"]) == 2
    captured = capsys.readouterr()
    assert "coldbrew serve: error: COLDBREW_API_KEYS is set but holds no key" in captured.err
    assert "write key is" not in captured.out
    monkeypatch.setenv("COLDBREW_API_KEYS", "abc")
    assert main(["serve", "--db", f"{tmp_path}/x.sqlite", "--encoder", "hashing"]) == 2
    assert "COLDBREW_API_KEYS entry 1 ('***') has 3 characters" in capsys.readouterr().err


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

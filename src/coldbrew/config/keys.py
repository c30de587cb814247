"""What a plain API key must look like; checked when the settings are read, so a weak or broken
key stops the service at start instead of being accepted in silence (issue 28, finding 5).

A key entry is refused, with a message naming its setting and position and showing at most its
first two characters, when it

- is empty (``a,,b``, or a comma at either end);
- holds anything but visible ASCII (``!`` to ``~``): a space, tab or other control character, or
  a non-ASCII letter, none of which an HTTP header carries so that the key could ever match;
- has fewer than :data:`MIN_KEY_CHARS` (16) characters;
- has fewer than :data:`MIN_DISTINCT_CHARS` (6) different characters (``aaaaaaaaaaaaaaaa``,
  ``abababababababab``), or is only digits.

Whitespace around an entry is trimmed (``key-one, key-two``), as HTTP trims header values.
``secrets.token_urlsafe(24)`` (what ``coldbrew serve`` makes when no key is set) always passes.
"""

from __future__ import annotations

import secrets

MIN_KEY_CHARS = 16
MIN_DISTINCT_CHARS = 6
MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))'"
_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return"}


def new_key() -> str:
    """A fresh random key (24 URL-safe characters, 144 bits) that passes every rule."""
    return secrets.token_urlsafe(18)


def masked(key: str) -> str:
    """A key as a message may show it: at most its first two characters, then one ``*`` per
    hidden character (a key of under 8 characters shows one, one of under 4 none)."""
    shown = key[: min(2, len(key) // 4)]
    return repr(shown + "*" * (len(key) - len(shown)))


def _character(char: str) -> str:
    return _NAMES.get(char, f"the character U+{ord(char):04X}")


def key_problem(key: str) -> str | None:
    """What is wrong with a plain key (a phrase that completes "the entry ..."), or ``None``."""
    if not key:
        return "is empty (two commas in a row, or a comma at either end)"
    for position, char in enumerate(key, 1):
        if not "!" <= char <= "~":
            return (
                f"holds {_character(char)} at character {position}: a key is visible ASCII "
                "characters only (an HTTP header cannot carry the rest so that it matches)"
            )
    if len(key) < MIN_KEY_CHARS:
        return f"has {len(key)} characters: a key needs at least {MIN_KEY_CHARS}"
    if len(set(key)) < MIN_DISTINCT_CHARS:
        return f"has fewer than {MIN_DISTINCT_CHARS} different characters: too easy to guess"
    if key.isdigit():
        return "is only digits: too easy to guess"
    return None


def check_key(key: str, variable: str, position: int) -> None:
    """Raise ``ValueError`` naming ``variable`` and the entry's ``position`` if ``key`` is weak
    or malformed (see the module's rules); the key itself is shown only :func:`masked`."""
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(f"{variable} entry {position} ({masked(key)}) {problem}; {MAKE_ONE}")

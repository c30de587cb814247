"""Render items and users as text the language model reads."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coldbrew.data.frames import pd


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value if not _is_missing(v))
    if isinstance(value, str) and "|" in value:
        return ", ".join(p.strip() for p in value.split("|") if p.strip())
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _trimmed(text: str) -> str:
    """``text`` without its trailing dots and spaces (each part ends where its sentence's full
    stop goes): a rendered text renders again to itself, so a model that re-renders a stored
    text (one ``text`` field) meets the very text its stored vector was encoded from."""
    return text.rstrip(". \t\n\r")


@dataclass(frozen=True)
class ItemTemplate:
    """Item text: the text fields joined as sentences, then ``label: value`` for attributes.

    ``labels`` renames a field in the output (``{"genres": "Genres"}``); ``max_chars`` cuts
    very long descriptions so encoding stays fast.
    """

    text_fields: tuple[str, ...] = ("title",)
    attribute_fields: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    max_chars: int = 2000

    def render(self, row: Mapping[str, Any]) -> str:
        parts = [
            _format_value(row[f]).strip()
            for f in self.text_fields
            if f in row and not _is_missing(row[f])
        ]
        for f in self.attribute_fields:
            if f in row and not _is_missing(row[f]):
                parts.append(f"{self.labels.get(f, f.replace('_', ' '))}: {_format_value(row[f])}")
        text = ". ".join(_trimmed(p) for p in parts if _trimmed(p))
        return _trimmed(text[: self.max_chars])

    def render_frame(self, items: pd.DataFrame) -> list[str]:
        return [self.render(row) for row in items.to_dict(orient="records")]


@dataclass(frozen=True)
class UserTemplate:
    """A user as text: their own words, then attributes as a short phrase.

    ``{"age": "25-34", "gender": "F", "occupation": "programmer"}`` renders as
    ``"age: 25-34, gender: F, occupation: programmer"``; ``phrases`` can map known attributes to
    natural words (``{"gender": {"F": "woman", "M": "man"}}``).
    """

    text_fields: tuple[str, ...] = ("text",)
    attribute_fields: tuple[str, ...] = ()
    phrases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prefix: str = "A user"

    def render_attributes(self, attributes: Mapping[str, Any]) -> str:
        fields: Sequence[str] = self.attribute_fields or tuple(attributes)
        parts = []
        for f in fields:
            value = attributes.get(f)
            if _is_missing(value):
                continue
            text = self.phrases.get(f, {}).get(str(value), _format_value(value))
            parts.append(f"{f.replace('_', ' ')}: {text}")
        return f"{self.prefix}, " + ", ".join(parts) if parts else ""

    def render(self, text: str | None, attributes: Mapping[str, Any]) -> str:
        pieces = [text.strip()] if text and text.strip() else []
        rendered = self.render_attributes(attributes)
        if rendered:
            pieces.append(rendered)
        return ". ".join(pieces)

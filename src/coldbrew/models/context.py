"""The context a user asks in (when, where, on what), and the features models read from it.

A context is a plain mapping, on a query (:attr:`~coldbrew.models.base.UserQuery.context`) as
on an event (the ``context`` column of a dataset's interactions). Known keys:

``time``
    Seconds since the epoch (read in UTC) or an ISO 8601 string (read on its own clock: a time
    without an offset is the shop's local time as given; one with an offset is read at that
    offset). The hour band, weekday and season are derived from it.
``location``, ``device``
    Short strings ("France", "mobile"), compared without case.
``text``
    Free words about the situation ("rainy evening, with kids"): kept for models that read text.

Any other key is kept too, with a string, number or boolean value, and becomes a feature of its
own (``weather=rain``). Nothing is derived that the context does not carry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TIME, LOCATION, DEVICE, TEXT = "time", "location", "device", "text"
MAX_KEYS = 20
MAX_VALUE_CHARS = 200
MAX_TEXT_CHARS = 2000
HOUR_BANDS = ((0, "night"), (6, "morning"), (12, "afternoon"), (18, "evening"))
"""Each band's first hour: night 0-5, morning 6-11, afternoon 12-17, evening 18-23."""
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SEASONS = ("winter", "spring", "summer", "autumn")
"""By month in the northern hemisphere: December to February is winter."""
MAX_EPOCH = 1e11  # seconds since the epoch: about the year 5138


def parse_context(raw: Mapping[str, Any] | None, *, where: str = "context") -> dict[str, Any]:
    """A checked copy of ``raw``: ``time`` as given (checked to parse), strings stripped.

    Raises
    ------
    ValueError
        Naming the field (``context.time``) and what is allowed, for a value that is not a
        string, number or boolean, an unreadable time, an empty key or too many keys.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping of key to value, got {type(raw).__name__}")
    if len(raw) > MAX_KEYS:
        raise ValueError(f"{where} has {len(raw)} keys; at most {MAX_KEYS} are allowed")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{where}.{key}"
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{where} keys must be non-empty strings, got {key!r}")
        out[key.strip()] = _checked(name, key.strip(), value)
    if TIME in out:
        context_time(out[TIME], where=f"{where}.{TIME}")
    return out


def _checked(name: str, key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, number or boolean, got {type(value).__name__}")
    limit = MAX_TEXT_CHARS if key == TEXT else MAX_VALUE_CHARS
    if len(value) > limit:
        raise ValueError(f"{name} has over {limit} characters")
    return value.strip()


def check_context_weight(weight: float) -> float:
    """``weight``, how much a model reads the query's context, refused unless finite and >= 0.

    Raises
    ------
    ValueError
        For a negative or non-finite weight.
    """
    if not 0.0 <= weight < float("inf"):
        raise ValueError(f"context_weight must be a finite number >= 0, got {weight}")
    return weight


def context_time(value: Any, *, where: str = "context.time") -> datetime:
    """The moment ``value`` names: epoch seconds (UTC) or an ISO 8601 string (its own clock).

    Raises
    ------
    ValueError
        Naming ``where``, for anything else.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(float(value)) or abs(float(value)) > MAX_EPOCH:
            raise ValueError(f"{where} must be seconds since 1970 within ±{MAX_EPOCH:.0e}")
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        f"{where} must be seconds since 1970 or an ISO 8601 time like "
        f"'2011-06-04T09:30:00', got {value!r}"
    )


def hour_band(hour: int) -> str:
    """``night``, ``morning``, ``afternoon`` or ``evening`` (:data:`HOUR_BANDS`)."""
    return [name for first, name in HOUR_BANDS if hour >= first][-1]


def time_features(moment: datetime) -> dict[str, str]:
    """The hour band, weekday and season of ``moment`` on its own clock."""
    return {
        "hour_band": hour_band(moment.hour),
        "weekday": WEEKDAYS[moment.weekday()],
        "season": SEASONS[moment.month % 12 // 3],
    }


def context_features(context: Mapping[str, Any] | None) -> dict[str, str]:
    """The categorical features of a (checked) context: ``hour_band``, ``weekday`` and
    ``season`` from its time, and every other key but ``text`` as its lower-cased value.
    A context without a key gives no feature for it."""
    if not context:
        return {}
    features: dict[str, str] = {}
    for key, value in context.items():
        if key == TIME:
            features.update(time_features(context_time(value)))
        elif key != TEXT and value is not None and str(value).strip():
            features[key] = str(value).strip().lower()
    return features


def describe_features(features: Mapping[str, str]) -> str:
    """Features in words, for an explanation: "on Saturday mornings in France"."""
    day, band = features.get("weekday", "").title(), features.get("hour_band", "")
    when = f"{day} {band}s" if day and band else f"{day}s" if day else f"{band}s" if band else ""
    words = [f"on {when}"] if when else []
    if "season" in features:
        words.append(f"in {features['season']}")
    if LOCATION in features:
        words.append(f"in {features[LOCATION].title()}")
    if DEVICE in features:
        words.append(f"on {features[DEVICE]}")
    return " ".join(words)


def context_sentence(context: Mapping[str, Any] | None) -> str:
    """A (checked) context in words, for a language model to read: its free ``text``, then
    the rest as in "Saturday morning in summer, in France, on mobile, weather: rain"; ``""``
    for a context that carries nothing."""
    if not context:
        return ""
    words = [str(context[TEXT]).strip()] if str(context.get(TEXT, "")).strip() else []
    if TIME in context:
        when = time_features(context_time(context[TIME]))
        words.append(f"{when['weekday'].title()} {when['hour_band']} in {when['season']}")
    for key, value in context.items():
        said = str(value).strip() if value is not None else ""
        if key in (TIME, TEXT) or not said:
            continue
        prefix = {LOCATION: "in ", DEVICE: "on "}.get(key, f"{key}: ")
        words.append(prefix + said)
    return ", ".join(words)

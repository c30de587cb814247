"""Error bodies: pydantic's validation errors as the service's ``ErrorOut`` rows.

Each row names the field as a dotted path (``items.3.attributes.colour``) and, inside a batch, the
row's index; anything not in a batch row (a body that is not JSON, a query parameter) has index -1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from starlette.routing import Match

from coldbrew.serve.schemas import ErrorOut

BATCH_FIELDS = frozenset({"items", "users", "interactions"})
_SCALAR_TAGS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})
_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "list_type",
        "dict_type",
        "none_required",
    }
)


def _is_tag(part: object) -> bool:
    """A union member or validator name pydantic puts in ``loc`` (not a field of the body)."""
    return isinstance(part, str) and (
        part in _SCALAR_TAGS or (part.endswith("]") and "[" in part and part != "[key]")
    )


def _field(loc: Sequence[object]) -> tuple[str, int]:
    """The dotted field of an error's location (without ``body``/union tags), and its row."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    index = -1
    if len(parts) >= 2 and parts[0] in BATCH_FIELDS and isinstance(parts[1], int):
        index = parts[1]
    names = [str(p) for p in parts if not _is_tag(p)]
    if names and names[-1] == "[key]":
        names[-1] = "(key)"
    return ".".join(names) or "body", index


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error', 'decode error')})"
    if kind == "string_pattern_mismatch":
        return (
            "holds a character not allowed here (NUL; in ids also spaces, '/', '?', '#', '\\', "
            "bidi controls and zero-width characters)"
        )
    return str(error.get("msg", "invalid"))


def _merge(group: list[Mapping[str, Any]]) -> str:
    """One message for the errors of one field: a union's members each report their own."""
    specific = [e for e in group if e.get("type") not in _TYPE_ERRORS]
    if specific:
        return "; ".join(dict.fromkeys(_message(e) for e in specific))
    if len(group) > 1:
        return "must be a string, a finite number, a boolean or a list of strings"
    return _message(group[0])


def validation_rows(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``ErrorOut.errors`` rows for pydantic/FastAPI validation errors, one per field."""
    grouped: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            loc = loc[:1]  # FastAPI puts the character offset here: not a row, not a field
        grouped.setdefault(_field(loc), []).append(error)
    return [
        {"index": index, "id": "", "field": field, "message": _merge(group)}
        for (field, index), group in grouped.items()
    ]


def validation_body(errors: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole 422 body: a one-line ``detail`` and the rows."""
    rows = validation_rows(errors)
    detail = "invalid request: " + "; ".join(f"{r['field']}: {r['message']}" for r in rows[:10])
    return {"detail": detail, "errors": rows}


DESCRIPTIONS = {
    401: "No API key, where one is needed",
    403: "The key is not valid here (or writes are off)",
    404: "An id the request names does not exist",
    408: "The body did not arrive in time",
    413: "The body is over the size limit",
    422: "The request is invalid; each row names a field",
    429: "Over a rate limit, or too many wrong keys: see Retry-After",
    503: "The database is unreachable or the encoder queue is full: see Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, each with the :class:`ErrorOut` body."""
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code]} for code in codes}


def _routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, those of included routers too (the service includes them unprefixed)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def allowed_methods(app: Any, scope: Mapping[str, Any]) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's).

    A literal path wins over templates it also fits (``/items/batch`` is documented as its own
    path, though ``/items/{item_id}`` fits it too), as in the OpenAPI document.
    """
    found: dict[str, set[str]] = {}
    for route in _routes(app.router.routes):
        match, _ = route.matches({**scope, "method": "GET"})
        if match != Match.NONE:
            found.setdefault(route.path, set()).update(getattr(route, "methods", None) or ())
    literal = found.get(scope.get("path", ""))
    return sorted(literal if literal is not None else set().union(*found.values()))

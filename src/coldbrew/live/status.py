"""What the engine reports of itself: the served version and the refits so far."""

from __future__ import annotations

from typing import Any

import numpy as np

from coldbrew.live.state import Live


def model_status(live: Live) -> dict[str, Any]:
    """The served version and the refits so far (for /admin/refit and /metrics)."""
    status: dict[str, Any] = {
        "version": live.info.version,
        "kind": live.info.kind,
        "serving": live.serving.model,
        "trainer": live.fleet is None or live.fleet.is_trainer(),
        "running": False,
        "refits": 0,
        "outcomes": {},
        "last": {},
    }
    if live.refitter is not None:
        stats = live.refitter.stats
        status.update(
            running=live.refitter.running,
            running_since=stats.running_since,
            refits=sum(stats.counts.values()),
            outcomes=dict(stats.counts),
            last=_json_safe(stats.last),
        )
    return status


def _json_safe(value: Any) -> Any:
    """NaN and infinities (a judge with no events) as ``None``, for JSON answers."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value

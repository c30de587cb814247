"""A dataset folder with every kind of file (CSV, JSON lines, a TOML spec), overridable per file."""

from __future__ import annotations

import json
from pathlib import Path

SPEC = """
name = "shop"
[items]
file = "items.csv"
id = "sku"
text = ["title", "description"]
attributes = ["category"]
[users]
file = "users.jsonl"
id = "uid"
text = ["about"]
attributes = ["age"]
[interactions]
file = "events.csv"
user = "uid"
item = "sku"
value = "rating"
timestamp = "when"
positive_threshold = 4
"""


ITEMS_CSV = """sku,title,description,category
1,Spring jacket,  Light   shell jacket ,clothing
2,Keyboard,Mechanical keyboard,electronics
3,Tent,Ultralight tent,outdoor
"""


EVENTS_CSV = """uid,sku,rating,when
a,1,5,1700000000
a,3,4,2024-01-02T10:00:00
b,2,5,1700000100
b,2,5,1700000100
"""


def write_folder(tmp_path: Path, **overrides: str | bytes) -> Path:
    files: dict[str, str | bytes] = {
        "dataset.toml": SPEC,
        "items.csv": ITEMS_CSV,
        "users.jsonl": "\n".join(
            json.dumps(u) for u in [{"uid": "a", "age": 30, "about": "hiker"}, {"uid": "b"}]
        ),
        "events.csv": EVENTS_CSV,
    }
    files.update(overrides)
    for name, content in files.items():
        target = tmp_path / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return tmp_path

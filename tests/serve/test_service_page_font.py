"""The page's shipped Chinese font covers every Chinese character the page and the demo show."""

from __future__ import annotations

import pytest

from coldbrew.serve.app import STATIC

SAMPLE = STATIC.parent.parent / "sample"


def test_the_shipped_font_subset_covers_the_page_and_the_sample_catalogue() -> None:
    ttlib = pytest.importorskip("fontTools.ttLib", reason="needs: pip install fonttools")
    font = ttlib.TTFont(STATIC / "page-cjk.woff")
    covered = set(font.getBestCmap())
    files = [STATIC / "index.html", STATIC / "app.js", *SAMPLE.glob("*.jsonl")]
    shown = {
        ord(char) for path in files for char in path.read_text("utf-8") if "一" <= char <= "鿿"
    }
    assert len(shown) > 100
    missing = "".join(sorted(chr(code) for code in shown - covered))
    assert not missing, f"rerun scripts/make_page_font.py: the font lacks {missing}"
    assert font["name"].getDebugName(1) == "Coldbrew Page CJK"  # OFL: a subset is renamed
    assert "Open Font License" in (STATIC / "page-cjk-OFL.txt").read_text("utf-8")

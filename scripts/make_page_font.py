"""Regenerate the try-it page's Chinese font subset from a freely licensed CJK font.

The page (src/coldbrew/serve/static/) advertises "English or 中文" and names categories in Chinese;
on a machine without a CJK font those show as empty boxes. This script collects every CJK character
in the page's own files and in the bundled sample catalogue (what ``coldbrew demo`` shows) and
keeps only those glyphs of Noto Sans CJK SC (SIL Open Font License 1.1), renamed as OFL asks of a
modified version.

Usage (needs fonttools, ``pip install fonttools``; the source font is Debian's fonts-noto-cjk,
``apt-get install fonts-noto-cjk``, or ``apt-get download`` it and ``dpkg-deb -x`` the .deb)::

    python scripts/make_page_font.py [/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc]

Run it again whenever a Chinese string is added to the page or the sample catalogue.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1] / "src" / "coldbrew"
STATIC = ROOT / "serve" / "static"
SOURCES = [STATIC / "index.html", STATIC / "app.js", *sorted((ROOT / "sample").glob("*.jsonl"))]
DEFAULT_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
SIMPLIFIED_CHINESE = 2  # the font number of "Noto Sans CJK SC" in the Debian collection
FAMILY = "Coldbrew Page CJK"
OUTPUT = STATIC / "page-cjk.woff"


def is_cjk(char: str) -> bool:
    """Whether a character is CJK (ideographs, punctuation, full-width forms)."""
    code = ord(char)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF


def page_characters() -> str:
    """Every CJK character in the page's files and the sample catalogue, sorted."""
    found = {char for path in SOURCES for char in path.read_text("utf-8") if is_cjk(char)}
    return "".join(sorted(found))


def rename(font: TTFont) -> None:
    """Give the subset its own name: OFL 1.1 keeps a modified font off the original's name."""
    names = font["name"]
    for name_id, value in ((1, FAMILY), (4, FAMILY), (6, FAMILY.replace(" ", "")), (3, FAMILY)):
        names.setName(value, name_id, 3, 1, 0x409)
        names.setName(value, name_id, 1, 0, 0)
    names.removeNames(nameID=16)
    names.removeNames(nameID=17)


def main(source: str = DEFAULT_FONT) -> None:
    """Write ``page-cjk.woff`` beside the page, holding only the page's CJK glyphs."""
    text = page_characters()
    options = subset.Options()
    options.flavor = "woff"  # zlib: no brotli needed; the file is small either way
    options.font_number = SIMPLIFIED_CHINESE
    font = subset.load_font(source, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    rename(font)
    subset.save_font(font, str(OUTPUT), options)
    print(f"{OUTPUT}: {len(text)} characters, {OUTPUT.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(*sys.argv[1:2])

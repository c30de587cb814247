"""The try-it page in a real headless Chromium: type, like, add an item, see it appear."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from servicekit import CATALOGUE, USERS, WRITE, WRITE_KEY

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def page_server(live_server: str) -> str:
    base = live_server
    httpx.post(f"{base}/items/batch", json={"items": CATALOGUE}, headers=WRITE).raise_for_status()
    httpx.post(f"{base}/users/batch", json={"users": USERS}, headers=WRITE).raise_for_status()
    return base


@contextmanager
def chromium(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A headless Chromium under chromedriver; ``env`` replaces the browser's environment."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian chromium/chromium-driver are not installed (apt-get install chromium)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=env), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path) as driver:
        yield driver


def test_page_recommends_explains_and_shows_a_new_item(
    page_server: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # the list re-renders as answers arrive, so a found element may go stale: retry then
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))

    def result_ids() -> list[str]:
        script = "return [...document.querySelectorAll('#results li.rec')].map(li => li.dataset.id)"
        found: list[str] = browser.execute_script(script)
        return found

    def click(selector: str) -> None:
        wait.until(lambda _: browser.find_element(By.CSS_SELECTOR, selector).click() or True)

    browser.get(f"{page_server}/#key={WRITE_KEY}")
    # the key leaves the address bar as the page's script starts (a loaded CI machine once
    # read the address before it had run)
    wait.until(lambda _: "key=" not in browser.current_url)
    assert "key=" not in browser.current_url
    browser.find_element(By.ID, "query").send_keys("a camping tent for hiking trips")
    wait.until(lambda _: result_ids() and result_ids()[0] == "tent")
    why = wait.until(lambda _: browser.find_element(By.CSS_SELECTOR, "#results li.rec .why").text)
    assert "tent" in why.lower() or "camping" in why.lower()

    # liking an item feeds the next request
    click("#results li.rec[data-id='tent'] button.like")
    wait.until(ec.text_to_be_present_in_element((By.ID, "liked"), "Ultralight camping tent"))
    wait.until(lambda _: "tent" not in result_ids())
    wait.until(lambda _: "which you liked" in browser.find_element(By.ID, "results").text)

    # attributes and a category filter
    wait.until(lambda _: browser.find_elements(By.ID, "attr-age"))
    browser.find_element(By.ID, "attr-age").send_keys("25-34")
    wait.until(lambda _: len(Select(browser.find_element(By.ID, "category")).options) > 3)

    # a new item appears in the recommendations once saved
    for field, value in (
        ("new-id", "hammock"),
        ("new-title", "Camping hammock for hiking trips"),
        ("new-description", "A light hammock and tent alternative for camping"),
        ("new-category", "outdoor"),
    ):
        browser.find_element(By.ID, field).send_keys(value)
    click("#add-item")
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Saved"))
    wait.until(lambda _: "hammock" in result_ids())

    browser.execute_script("window.scrollTo(0, 0)")
    png = browser.get_screenshot_as_png()
    (tmp_path / "page.png").write_bytes(png)
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert image.size[0] >= 800 and len(colours) > 50, "the screenshot looks blank"
    extrema = image.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 100  # dark text on a light page
    assert httpx.get(f"{page_server}/items/hammock").json()["title"].startswith("Camping hammock")


def test_page_clears_old_results_filters_across_languages_and_reads_choices_from_data(
    page_server: str, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    book = {"id": "huozhe", "title": "活着 长篇小说", "description": "余华的小说",
            "attributes": {"category": "图书"}}  # fmt: skip
    httpx.post(f"{page_server}/items", json=book, headers=WRITE).raise_for_status()
    icon = httpx.get(f"{page_server}/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"

    def result_ids() -> list[str]:
        script = "return [...document.querySelectorAll('#results li.rec')].map(li => li.dataset.id)"
        found: list[str] = browser.execute_script(script)
        return found

    def options(select_id: str) -> list[str]:
        return [o.text for o in Select(browser.find_element(By.ID, select_id)).options]

    def attribute_boxes() -> list[str]:
        script = "return [...document.querySelectorAll('#attributes input')].map(i => i.id)"
        found: list[str] = browser.execute_script(script)
        return found

    browser.get(f"{page_server}/#key={WRITE_KEY}")
    # the choices come from the data: a box per user attribute name (never the users' values,
    # which stay private), the items' categories as options
    wait.until(lambda _: "attr-occupation" in attribute_boxes())
    names = {name for user in USERS for name in user["attributes"]}
    assert sorted(attribute_boxes()) == sorted(f"attr-{name}" for name in names)
    assert "student" not in browser.page_source and "18-24" not in browser.page_source
    assert "books · 图书" in options("category") and "图书" not in options("category")

    # one "books" option finds the English- and the Chinese-labelled books
    Select(browser.find_element(By.ID, "category")).select_by_visible_text("books · 图书")
    query = browser.find_element(By.ID, "query")
    query.send_keys("一本小说")
    wait.until(lambda _: "huozhe" in result_ids())
    assert set(result_ids()) <= {"scifi", "cookbook", "huozhe"}

    # clearing every input clears the old results
    query.send_keys(Keys.CONTROL + "a", Keys.DELETE)
    wait.until(lambda _: not result_ids())
    assert "Type something" in browser.find_element(By.ID, "results").text

    # the add-item form empties after a save
    for field, value in (("new-id", "lamp"), ("new-title", "Desk lamp"), ("new-category", "home")):
        browser.find_element(By.ID, field).send_keys(value)
    browser.find_element(By.ID, "add-item").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Saved"))
    for field in ("new-id", "new-title", "new-category", "new-description"):
        assert browser.find_element(By.ID, field).get_attribute("value") == ""
    assert httpx.get(f"{page_server}/items/lamp").status_code == 200


# Record the body of every POST /recommend the page sends (fetch wrapped in place).
RECORD_REQUESTS = """
window.sent = [];
const fetched = window.fetch;
window.fetch = (url, init) => {
  if (String(url).endsWith("/recommend")) window.sent.push(JSON.parse(init.body));
  return fetched(url, init);
};
"""


def test_page_sends_the_context_boxes_as_the_request_context(
    page_server: str, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(page_server)
    browser.execute_script(RECORD_REQUESTS)
    browser.find_element(By.ID, "context-text").send_keys("a rainy evening, with kids")
    browser.find_element(By.ID, "context-location").send_keys("France")
    # a date box's typing order follows the browser's locale: set its value as a user's pick
    browser.execute_script(
        "const box = document.getElementById('context-time'); box.value = arguments[0];"
        "box.dispatchEvent(new Event('input'));",
        "2011-06-04T09:30",
    )
    want = {"text": "a rainy evening, with kids", "location": "France", "time": "2011-06-04T09:30"}
    wait.until(lambda _: browser.execute_script("return window.sent.at(-1)?.context") == want)
    # a context alone is enough to ask, and the service answers it
    wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#results li.rec"))
    assert "Type something" not in browser.find_element(By.ID, "results").text


def latin_fonts_only(tmp_path: Path) -> dict[str, str]:
    """An environment whose fontconfig sees one Latin font file and no CJK font, as on a machine
    without CJK fonts, whatever this machine has installed."""
    listed = subprocess.run(["fc-list", ":lang=en", "file"], capture_output=True, text=True)
    chinese = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True)
    latin = sorted(set(listed.stdout.split()) - set(chinese.stdout.split()))
    if not latin:
        pytest.skip("fontconfig lists no Latin-only font here")
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / "latin").symlink_to(latin[0].rstrip(":"))
    config = tmp_path / "fonts.conf"
    config.write_text(
        f'<?xml version="1.0"?>\n<fontconfig><dir>{fonts}</dir>'
        f"<cachedir>{tmp_path / 'fontcache'}</cachedir></fontconfig>\n"
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


# Draw each character alone on a canvas in the given CSS font family; answer its alpha pixels.
DRAW_EACH = """
const [chars, plain, done] = arguments;
const family = getComputedStyle(document.body).fontFamily;
const canvas = document.createElement("canvas");
canvas.width = canvas.height = 40;
const context = canvas.getContext("2d", { willReadFrequently: true });
const draw = (font, char) => {
  context.clearRect(0, 0, 40, 40);
  context.font = `32px ${font}`;
  context.fillText(char, 2, 34);
  return context.getImageData(0, 0, 40, 40).data.filter((_, i) => i % 4 === 3).join(",");
};
document.fonts.load(`32px ${family}`, chars.join("")).then(() => done({
  page: chars.map((char) => draw(family, char)),
  plain: chars.map((char) => draw(plain, char)),
  loaded: [...document.fonts].filter((f) => f.status === "loaded").map((f) => f.family),
}));
"""


def test_page_draws_its_chinese_with_the_shipped_font_where_no_cjk_font_is_installed(
    live_server: str, tmp_path: Path
) -> None:
    from coldbrew.serve.app import STATIC

    page_text = (STATIC / "index.html").read_text("utf-8") + (STATIC / "app.js").read_text("utf-8")
    chars = sorted({char for char in page_text if "\u4e00" <= char <= "\u9fff"})
    assert {"中", "文", "图", "书", "鞋"} <= set(chars)  # header, categories
    with chromium(tmp_path, env=latin_fonts_only(tmp_path)) as driver:
        driver.get(live_server)
        drawn = driver.execute_async_script(DRAW_EACH, chars, "sans-serif")
    plain, page = (list(map(hash, drawn[font])) for font in ("plain", "page"))
    # without the shipped font every Chinese character is the same empty box ("tofu")...
    assert len(set(plain)) == 1
    # ...with it, each character has its own glyph, with ink
    assert any("Coldbrew Page CJK" in family for family in drawn["loaded"]), drawn["loaded"]
    assert len(set(page)) == len(chars)
    assert all(set(glyph.split(",")) != {"0"} for glyph in drawn["page"])

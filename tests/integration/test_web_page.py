"""The page at ``GET /`` of the inference port, in real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) against a real server with token authorization on.

The markup test is real end to end: ``tests/data/web/markup_text.png`` is a rendered line
reading ``<img src=x onerror=alert(1)>``, which the bundled recognizer reads back exactly, so the
server's own answer carries markup and the page must show it as text. The test first checks that
the recognizer did read it (else it would prove nothing).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from ocrserve import Client
from ocrserve.server.webpage import CONTENT_SECURITY_POLICY, WEB_DIR
from tests.conftest import DEMO, REPO, ServerProcess, running
from tests.documents import encrypted_pdf, pdf_of, text_page, tiff_of
from tests.prerequisites import tool_skip_reason

pytestmark = pytest.mark.slow

MARKUP_IMAGE = REPO / "tests" / "data" / "web" / "markup_text.png"
MARKUP_TEXT = "<img src=x onerror=alert(1)>"
DET_IMAGE = DEMO / "demo_text_det.jpg"
_DEMO_LINES = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
DET_LINES = [line["text"] for line in _DEMO_LINES]
PDF_WORDS = ["ALPHA", "BRAVO", "CHARLIE"]
KEY_STORE = "ocrserve.inferenceKey"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The bundled models, token authorization on, the page on (the default)."""
    yield from running(ServerProcess(tmp_path_factory.mktemp("web"), auth=True))


@pytest.fixture(scope="module")
def key(srv: ServerProcess) -> str:
    return str(json.loads((srv.workdir / "key_file.json").read_text())["inference"]["key"])


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[Any]:
    """Headless Chromium through chromedriver, with a fresh profile that saves downloads in
    ``downloads`` without asking; skips without them."""
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip(tool_skip_reason("selenium", "pip install -e '.[test]'"))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip(
            tool_skip_reason("chromium and chromedriver", "apt-get install -y chromium "
                             "chromium-driver")
        )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
    })  # fmt: skip
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _css(root: Any, selector: str) -> list[Any]:
    return list(root.find_elements("css selector", selector))


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _open(driver: Any, srv: ServerProcess, key: str | None) -> None:
    """The page in a fresh tab state, with ``key`` already in sessionStorage when given."""
    driver.get(srv.url + "/web/icon.svg")  # same origin, no script: set the key before loading
    driver.execute_script("sessionStorage.clear()")
    if key is not None:
        driver.execute_script(f"sessionStorage.setItem('{KEY_STORE}', arguments[0])", key)
    driver.get_log("browser")  # drain
    driver.get(srv.url + "/")


def _models_listed(driver: Any) -> list[str]:
    _wait(driver, lambda d: d.find_element("id", "model").is_enabled())
    return [o.get_attribute("value") for o in _css(driver, "#model option")]


def _upload(driver: Any, model: str, *paths: Path) -> list[Any]:
    """Choose ``model``, give the page ``paths``; the finished cards, newest first."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "model")).select_by_value(model)
    before = len(_css(driver, ".card"))
    driver.find_element("id", "files").send_keys("\n".join(str(p) for p in paths))
    _wait(driver, lambda d: len(_css(d, ".card:not([data-state=pending])")) == before + len(paths))
    return _css(driver, ".card")[: len(paths)]


# -- the server side ------------------------------------------------------------------------


def test_the_page_and_its_files_need_no_key_and_carry_a_strict_policy(
    srv: ServerProcess, key: str
) -> None:
    page = httpx.get(srv.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY and "default-src 'self'" in policy
    assert "unsafe" not in policy and "script-src 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for path, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("icon.svg", "image/svg+xml")):  # fmt: skip
        answer = httpx.get(f"{srv.url}/web/{path}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert httpx.request("OPTIONS", srv.url + "/").json()["openapi"].startswith("3.")
    refused = httpx.get(srv.url + "/ocrserve/models")
    assert refused.status_code == 401 and refused.json()["type"] == "InvalidKeyException"
    assert httpx.get(srv.url + "/web/other.js").status_code == 401  # only the page's files
    other = httpx.get(srv.url + "/web/other.js", headers={"Authorization": f"Bearer {key}"})
    assert other.status_code == 404


def test_the_page_has_no_inline_code_and_never_writes_html() -> None:
    html = (WEB_DIR / "index.html").read_text()
    assert all('src="/web/' in tag for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"<script[^>]*>\s*[^<\s]", html)  # no inline script body
    assert not re.search(r"\son[a-z]+=|\sstyle=|<style", html)
    script = (WEB_DIR / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "localStorage" not in script and "sessionStorage" in script


def test_the_page_can_be_turned_off(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--models", "ppocr_rec", "--no-enable-web-page")
    for srv in running(server):
        answer = httpx.get(srv.url + "/")
        assert answer.status_code == 405 and answer.json()["type"] == "MethodNotAllowedException"
        assert httpx.get(srv.url + "/web/app.js").status_code == 404
        assert httpx.request("OPTIONS", srv.url + "/").status_code == 200
        assert httpx.get(srv.url + "/ocrserve/models").json()["models"][0]["task"] == "textrecog"


# -- in the browser -------------------------------------------------------------------------


def test_a_missing_or_wrong_key_is_a_clear_message(
    browser: Any, srv: ServerProcess, key: str
) -> None:
    _open(browser, srv, None)
    message = browser.find_element("id", "message")
    _wait(browser, lambda d: message.is_displayed())
    assert "asks for its inference key" in message.text and "ocrserve key" in message.text
    assert browser.find_element("id", "key-field").is_displayed()
    assert not browser.find_element("id", "model").is_enabled()

    field = browser.find_element("id", "key")
    field.send_keys("not-the-key-" + "x" * 40)
    browser.find_element("id", "key-save").click()
    _wait(browser, lambda d: "refused this key" in message.text)
    assert "Token Authorization failed" in message.text and "ocrserve key" in message.text

    field.clear()
    field.send_keys(key)
    browser.find_element("id", "key-save").click()
    assert _models_listed(browser) == ["ocr", "ppocr_det", "ppocr_rec"]
    assert not message.is_displayed()
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORE}')") == key
    assert browser.execute_script("return localStorage.length") == 0


def test_the_demo_image_on_ocr_shows_its_lines_and_polygons(
    browser: Any, srv: ServerProcess, key: str
) -> None:
    _open(browser, srv, key)
    assert _models_listed(browser) == ["ocr", "ppocr_det", "ppocr_rec"]
    assert browser.find_element("id", "model").get_attribute("value") == "ocr"  # end to end
    [card] = _upload(browser, "ocr", DET_IMAGE)
    assert card.get_attribute("data-state") == "done"
    raw = json.loads(browser.execute_script(
        "return arguments[0].querySelector('.raw pre').textContent", card
    ))  # fmt: skip
    assert [line["text"] for line in raw["result"]] == DET_LINES
    assert [t.text for t in _css(card, ".lines li .text")] == DET_LINES
    polygons = _css(card, ".overlay polygon")
    assert len(polygons) == len(raw["result"])
    labels = browser.execute_script(
        "return [...arguments[0].querySelectorAll('.overlay text')].map(t => t.textContent)", card
    )
    assert labels == [str(n) for n in range(1, len(DET_LINES) + 1)]
    first = [float(v) for v in re.split(r"[ ,]", polygons[0].get_attribute("points"))]
    assert first == raw["result"][0]["box"]
    meta = card.find_element("css selector", ".meta").text
    assert re.fullmatch(r"ocr · 6 lines · \d+ ms", meta), meta
    assert f"{raw['result'][0]['text_score']:.3f}" in _css(card, ".lines li .score")[0].text

    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(_css(card, ".lines li")[2]).perform()
    highlighted = browser.execute_script(
        "return [...arguments[0].querySelectorAll('.hl')].map(e => e.tagName + e.dataset.index)",
        card,
    )
    assert sorted(highlighted) == ["LI2", "g2"]
    ActionChains(browser).move_to_element(polygons[4]).perform()
    assert "hl" in _css(card, ".lines li")[4].get_attribute("class")
    assert _errors(browser) == []


def test_several_images_and_markup_in_a_text_shown_literally(
    browser: Any, srv: ServerProcess, key: str
) -> None:
    with Client(srv.url, token=key) as client:
        answer = client.predict("ppocr_rec", MARKUP_IMAGE).raw
    assert answer["text"] == MARKUP_TEXT, "the recognizer no longer reads the markup image"
    _open(browser, srv, key)
    _models_listed(browser)
    cards = _upload(browser, "ppocr_rec", DEMO / "demo_text_recog.jpg", MARKUP_IMAGE)
    texts = {c.find_element("css selector", ".file").text: _css(c, ".lines li .text")
             for c in cards}  # fmt: skip
    assert [t.text for t in texts["demo_text_recog.jpg"]] == ["serving"]
    metas = {c.find_element("css selector", ".file").text: _meta(c) for c in cards}
    assert re.fullmatch(r"ppocr_rec · “serving” · \d+ ms", metas["demo_text_recog.jpg"])
    assert f"“{MARKUP_TEXT}”" in metas["markup_text.png"]
    [shown] = texts["markup_text.png"]
    assert shown.get_attribute("textContent") == MARKUP_TEXT
    markup_card = next(c for c in cards if "markup" in c.text)
    assert [i.get_attribute("class") for i in _css(markup_card, "img")] == ["photo"]
    assert _css(markup_card, ".lines img") == []
    assert browser.execute_script("return document.querySelectorAll('img').length") == 2
    assert _errors(browser) == []  # an alert would have raised UnexpectedAlertPresentException


def test_a_phone_sized_screen_stacks_the_image_over_the_texts(
    browser: Any, srv: ServerProcess, key: str
) -> None:
    size = browser.get_window_size()
    browser.set_window_size(390, 844)
    try:
        _open(browser, srv, key)
        _models_listed(browser)
        [card] = _upload(browser, "ocr", DET_IMAGE)
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        figure = card.find_element("css selector", ".stage").rect
        lines = card.find_element("css selector", ".lines").rect
        assert lines["y"] >= figure["y"] + figure["height"] - 1  # below, not beside
        assert figure["width"] <= width
    finally:
        browser.set_window_size(size["width"], size["height"])


def test_a_detection_model_shows_its_boxes_and_scores(
    browser: Any, srv: ServerProcess, key: str
) -> None:
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ppocr_det", DET_IMAGE)
    raw = json.loads(card.find_element("css selector", ".raw pre").get_attribute("textContent"))
    boxes = raw["boundary_result"]
    assert len(_css(card, ".overlay polygon")) == len(boxes) == len(DET_LINES)
    texts = [t.get_attribute("textContent") for t in _css(card, ".lines li .text")]
    assert texts == [f"text region {n}" for n in range(1, len(boxes) + 1)]
    scores = [s.get_attribute("textContent") for s in _css(card, ".lines li .score")]
    assert scores == [f"box {b[-1]:.3f}" for b in boxes]
    assert re.fullmatch(rf"ppocr_det · {len(boxes)} boxes · \d+ ms", _meta(card))
    assert not card.find_element("css selector", ".downloads").is_displayed()  # no text to save
    assert _errors(browser) == []


def _meta(card: Any) -> str:
    return str(card.find_element("css selector", ".meta").text)


def _wait_loaded(driver: Any, image: Any) -> None:
    """Until ``image`` (an ``<img>``) has loaded and decoded."""
    script = "return arguments[0].complete && arguments[0].naturalWidth > 0"
    _wait(driver, lambda d: d.execute_script(script, image))


def _scaled(driver: Any, element: Any) -> dict[str, float]:
    """``element``'s box on the screen (CSS pixels), from getBoundingClientRect."""
    rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
    return {k: float(rect[k]) for k in ("x", "y", "width", "height")}


# Records the card's progress line each time the results change (a MutationObserver): what the
# page said while the answer streamed.
_WATCH_PROGRESS = """
window.progressSeen = [];
new MutationObserver(() => {
  for (const p of document.querySelectorAll('.card .progress:not([hidden]) span'))
    window.progressSeen.push(p.textContent);
}).observe(document.getElementById('results'),
           {subtree: true, childList: true, characterData: true, attributes: true});
"""


def test_a_pdf_shows_each_page_as_it_is_read(
    browser: Any, srv: ServerProcess, key: str, tmp_path: Path
) -> None:
    pdf = tmp_path / "three-pages.pdf"
    pdf.write_bytes(pdf_of([text_page(word) for word in PDF_WORDS]))
    _open(browser, srv, key)
    _models_listed(browser)
    accept = browser.find_element("id", "files").get_attribute("accept")
    assert "application/pdf" in accept and ".tiff" in accept
    assert "Drop images or PDFs" in browser.find_element("id", "drop").text
    browser.execute_script(_WATCH_PROGRESS)
    [card] = _upload(browser, "ocr", pdf)
    assert card.get_attribute("data-state") == "done", card.text
    raw = json.loads(card.find_element("css selector", ".raw pre").get_attribute("textContent"))
    pages = raw["pages"]
    assert [p["page"] for p in pages] == [1, 2, 3]
    sections = _css(card, ".page")
    assert [s.get_attribute("data-page") for s in sections] == ["1", "2", "3"]
    for section, page, word in zip(sections, pages, PDF_WORDS, strict=True):
        assert section.get_attribute("data-state") == "done"
        texts = [t.get_attribute("textContent") for t in _css(section, ".lines li .text")]
        assert texts == [line["text"] for line in page["result"]] and word in texts
        head = section.find_element("css selector", ".page-head").text
        lines = "1 line" if len(texts) == 1 else f"{len(texts)} lines"
        assert re.fullmatch(rf"page {page['page']} of 3 · \d+\.\d\d s · {lines}", head), head
        assert f"{page['time_ms'] / 1000:.2f} s" in head
        assert page["image"].startswith("data:image/") and page["image"].endswith("KiB)")
        photo = section.find_element("css selector", ".photo")
        assert photo.get_attribute("src").startswith("blob:")  # the policy allows blob:, not data:
        _wait_loaded(browser, photo)
        natural = browser.execute_script("return arguments[0].naturalWidth", photo)
        assert 0 < natural <= page["width"]
        svg = section.find_element("css selector", ".overlay")
        view_box = browser.execute_script("return arguments[0].getAttribute('viewBox')", svg)
        assert view_box == f"0 0 {page['width']} {page['height']}"
        polygons = _css(section, ".overlay polygon")
        assert len(polygons) == len(texts)
        first = [float(v) for v in re.split(r"[ ,]", polygons[0].get_attribute("points"))]
        assert first == page["result"][0]["box"]
        # The polygon lands where the box is on the image as shown (boxes in page pixels).
        shown, box = _scaled(browser, photo), _scaled(browser, polygons[0])
        scale = shown["width"] / page["width"]
        xs, ys = first[0::2], first[1::2]
        assert abs(box["x"] - (shown["x"] + min(xs) * scale)) < 3
        assert abs(box["y"] - (shown["y"] + min(ys) * scale)) < 3
        assert abs(box["width"] - (max(xs) - min(xs)) * scale) < 3
    # Each page was on the screen as soon as its line came: the first before the server had
    # finished the last (the browser's Date.now() and the server's done_at: one clock).
    shown_at = [float(s.get_attribute("data-shown-at")) for s in sections]
    done_at = [p["done_at"] * 1000 for p in pages]
    assert shown_at == sorted(shown_at) and done_at == sorted(done_at)
    assert all(s >= d - 50 for s, d in zip(shown_at, done_at, strict=True))  # clocks agree
    assert shown_at[0] < done_at[-1], (shown_at, done_at)
    seen = browser.execute_script("return window.progressSeen")
    assert "1 of 3 pages read" in seen and "2 of 3 pages read" in seen, seen
    assert not card.find_element("css selector", ".progress").is_displayed()
    assert re.fullmatch(r"ocr · 3 pages · \d+\.\d\d s", _meta(card)), _meta(card)

    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(_css(sections[1], ".lines li")[0]).perform()
    highlighted = browser.execute_script(
        "return [...arguments[0].querySelectorAll('.hl')].map(e => e.tagName + e.dataset.index)",
        card,
    )
    assert sorted(highlighted) == ["LI0", "g0"]  # within its page only
    assert _errors(browser) == []


def test_a_tiff_is_shown_through_its_page_images(
    browser: Any, srv: ServerProcess, key: str, tmp_path: Path
) -> None:
    """Chromium cannot show a TIFF itself: its pages are seen as the server's page images."""
    tiff = tmp_path / "two-pages.tiff"
    tiff.write_bytes(tiff_of([text_page(word) for word in PDF_WORDS[:2]]))
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ocr", tiff)
    assert card.get_attribute("data-state") == "done", card.text
    sections = _css(card, ".page")
    assert [s.find_element("css selector", ".page-head").text.split(" · ")[0]
            for s in sections] == ["page 1 of 2", "page 2 of 2"]  # fmt: skip
    for section, word in zip(sections, PDF_WORDS, strict=False):
        assert word in [t.text for t in _css(section, ".lines li .text")]
        photo = section.find_element("css selector", ".photo")
        _wait_loaded(browser, photo)
    assert re.fullmatch(r"ocr · 2 pages · \d+\.\d\d s", _meta(card)), _meta(card)
    assert _errors(browser) == []


def test_a_pdf_refused_before_its_pages_is_an_error_in_its_card(
    browser: Any, srv: ServerProcess, key: str, tmp_path: Path
) -> None:
    pdf = tmp_path / "locked.pdf"
    pdf.write_bytes(encrypted_pdf())
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ocr", pdf)
    assert card.get_attribute("data-state") == "error"
    error = card.find_element("css selector", ".error").text
    assert error.startswith("400 ") and "encrypted" in error, error
    assert _meta(card) == "failed" and _css(card, ".page") == []
    assert not card.find_element("css selector", ".progress").is_displayed()


# -- downloads -------------------------------------------------------------------------------


def _download(driver: Any, card: Any, fmt: str, folder: Path) -> Path:
    """Clicks the card's ``fmt`` button; the file the browser saved in ``folder``."""
    for old in folder.iterdir():
        old.unlink()
    button = card.find_element("css selector", f".downloads button[data-format={fmt}]")
    assert button.is_displayed(), fmt
    button.click()
    status = card.find_element("css selector", ".download-status")
    _wait(driver, lambda d: "Saved " in status.text or "No " in status.text, timeout=120)
    assert status.text.startswith("Saved "), status.text

    def saved(_: Any) -> list[Path]:
        files = list(folder.iterdir())
        done = [f for f in files if not f.name.endswith((".crdownload", ".tmp"))]
        return done if len(done) == len(files) == 1 else []

    [path] = _wait(driver, saved, timeout=30)
    assert f"Saved {path.name} (" in status.text
    time.sleep(0.2)  # the browser has renamed it whole; let it close the file
    return path


def _server_answer(srv: ServerProcess, key: str, data: bytes, fmt: str, kind: str) -> bytes:
    answer = httpx.post(f"{srv.url}/predictions/ocr", params={"format": fmt}, content=data,
                        headers={"Authorization": f"Bearer {key}", "Content-Type": kind},
                        timeout=300)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.content


def _hocr_lines(data: bytes) -> list[str]:
    """Each ``ocr_line``'s words joined, from hOCR parsed as XML."""
    root = etree.fromstring(data)
    lines = root.xpath("//*[contains(concat(' ', @class, ' '), ' ocr_line ')]")
    words = ".//*[contains(concat(' ', @class, ' '), ' ocrx_word ')]"
    return [" ".join("".join(w.itertext()) for w in line.xpath(words)) for line in lines]


def _alto_lines(data: bytes) -> list[str]:
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    root = etree.fromstring(data)
    return [
        " ".join(s.get("CONTENT") for s in line.findall("a:String", ns))
        for line in root.iterfind(".//a:TextLine", ns)
    ]


def test_an_images_text_hocr_and_alto_download_as_the_server_writes_them(
    browser: Any, srv: ServerProcess, key: str, downloads: Path
) -> None:
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ocr", DET_IMAGE)
    group = card.find_element("css selector", ".downloads")
    assert group.is_displayed() and group.get_attribute("role") == "group"
    shown = [b.text for b in _css(group, "button") if b.is_displayed()]
    assert shown == ["Text", "hOCR", "ALTO"]  # no searchable PDF for an image
    data = DET_IMAGE.read_bytes()

    text = _download(browser, card, "text", downloads)
    assert text.name == "demo_text_det.txt"
    assert text.read_bytes() == _server_answer(srv, key, data, "text", "image/jpeg")
    assert [line for line in text.read_text().splitlines() if line] == DET_LINES

    hocr = _download(browser, card, "hocr", downloads)
    assert hocr.name == "demo_text_det.hocr"
    assert _hocr_lines(hocr.read_bytes()) == DET_LINES

    alto = _download(browser, card, "alto", downloads)
    assert alto.name == "demo_text_det.alto.xml"
    assert _alto_lines(alto.read_bytes()) == DET_LINES
    assert _errors(browser) == []


def test_a_pdfs_searchable_pdf_and_text_download(
    browser: Any, srv: ServerProcess, key: str, downloads: Path, tmp_path: Path
) -> None:
    if not shutil.which("pdftotext"):
        pytest.skip(tool_skip_reason("pdftotext", "apt-get install -y poppler-utils"))
    pdf = tmp_path / "two pages.pdf"
    pdf.write_bytes(pdf_of([text_page(word) for word in PDF_WORDS[:2]]))
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ocr", pdf)
    assert card.get_attribute("data-state") == "done", card.text
    shown = [b.text for b in _css(card, ".downloads button") if b.is_displayed()]
    assert shown == ["Text", "hOCR", "ALTO", "Searchable PDF"]

    searchable = _download(browser, card, "pdf", downloads)
    assert searchable.name == "two pages.searchable.pdf"
    assert searchable.read_bytes().startswith(b"%PDF-")
    done = subprocess.run(["pdftotext", str(searchable), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pages = [page.split() for page in done.stdout.split("\f") if page.strip()]
    assert pages == [[word] for word in PDF_WORDS[:2]], done.stdout

    text = _download(browser, card, "text", downloads)
    assert text.name == "two pages.txt"
    assert [page.split() for page in text.read_text().split("\f")] == [["ALPHA"], ["BRAVO"]]
    assert _errors(browser) == []


def test_a_refused_download_says_why_and_asks_for_the_key(
    browser: Any, srv: ServerProcess, key: str, downloads: Path
) -> None:
    _open(browser, srv, key)
    _models_listed(browser)
    [card] = _upload(browser, "ocr", DEMO / "demo_text_recog.jpg")
    browser.execute_script(f"sessionStorage.setItem('{KEY_STORE}', 'not-the-key')")
    for old in downloads.iterdir():
        old.unlink()
    card.find_element("css selector", ".downloads button[data-format=hocr]").click()
    status = card.find_element("css selector", ".download-status")
    _wait(browser, lambda d: status.text.startswith("No hOCR: 401 "))
    assert "failed" in status.get_attribute("class")
    assert browser.find_element("id", "key-field").is_displayed()
    assert "refused this key" in browser.find_element("id", "message").text
    assert list(downloads.iterdir()) == []

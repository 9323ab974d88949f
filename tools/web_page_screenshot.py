#!/usr/bin/env python3
"""Take docs/web-page.png: the page at GET / of the inference port on demo/demo_text_det.jpg with
the end-to-end model ``ocr``, one line hovered, in headless Chromium (Debian's chromium and
chromium-driver, through Selenium). A real server is started on free loopback ports with token
authorization on; the key goes into the page as a user would give it (sessionStorage).
With ``--pdf``, docs/web-page-pdf.png: a three-page PDF made here (the demo image as a scanned
page, then two pages of text), read page by page.

Usage: python tools/web_page_screenshot.py [--pdf] [--out docs/web-page.png] [--width 1200]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait

from ocrserve.server.launcher import LocalServer

REPO = Path(__file__).resolve().parents[1]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)  # fmt: skip


def _text_page(lines: list[str]) -> Image.Image:
    page = Image.new("RGB", (900, 80 + 90 * len(lines)), "white")
    font = ImageFont.load_default(size=52)  # Pillow's bundled font: the same on every machine
    for n, line in enumerate(lines):
        ImageDraw.Draw(page).text((60, 40 + 90 * n), line, fill="black", font=font)
    return page


def _pdf(path: Path) -> Path:
    """The demo image as a scanned page, then two pages of text, at 150 dpi."""
    pages = [
        Image.open(REPO / "demo" / "demo_text_det.jpg").convert("RGB"),
        _text_page(["Each page is shown", "as soon as it is read"]),
        _text_page(["with its own time"]),
    ]
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=150.0)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", action="store_true", help="take docs/web-page-pdf.png")
    parser.add_argument("--out")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    out = args.out or str(REPO / "docs" / ("web-page-pdf.png" if args.pdf else "web-page.png"))
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        print("needs chromium and chromedriver: apt-get install -y chromium chromium-driver",
              file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory(prefix="ocrserve-shot-") as tmp:
        server = LocalServer(Path(tmp) / "server", auth=True, pythonpath=REPO)
        try:
            server.wait_healthy()
            key = json.loads((server.workdir / "key_file.json").read_text())["inference"]["key"]
            options = webdriver.ChromeOptions()
            options.binary_location = chromium
            for flag in (
                *FLAGS,
                f"--user-data-dir={tmp}/profile",
                f"--window-size={args.width},960",
            ):
                options.add_argument(flag)
            driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
            try:
                driver.get(server.url + "/web/icon.svg")
                driver.execute_script(
                    "sessionStorage.setItem('ocrserve.inferenceKey', arguments[0])", key
                )
                driver.get(server.url + "/")
                wait = WebDriverWait(driver, 60)
                wait.until(lambda d: d.find_element("id", "model").is_enabled())
                upload = (
                    _pdf(Path(tmp) / "scan.pdf")
                    if args.pdf
                    else REPO / "demo" / "demo_text_det.jpg"
                )
                driver.find_element("id", "files").send_keys(str(upload))
                wait.until(lambda d: d.find_elements("css selector", ".card[data-state=done]"))
                line = driver.find_elements("css selector", ".lines li")[1]
                ActionChains(driver).move_to_element(line).perform()
                driver.set_window_size(args.width, 2000)
                bottom = driver.execute_script(
                    "return document.querySelector('main').getBoundingClientRect().bottom"
                )
                png = driver.get_screenshot_as_png()
            finally:
                driver.quit()
        finally:
            server.stop()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, int(bottom) + 8)))
    image = image.quantize(colors=128, dither=Image.Dither.NONE)
    image.save(out, optimize=True)
    print(f"{out}: {image.width}x{image.height}, {Path(out).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

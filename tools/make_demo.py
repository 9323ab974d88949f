#!/usr/bin/env python3
"""Render the demo images in ``demo/`` (deterministic; Pillow and the system DejaVu fonts only).

Writes, relative to the repository root:
  demo/demo_text_det.jpg    a ~1000x700 scene with six horizontal text lines
  demo/demo_text_det.json   {"lines": [{"text", "points": 4 corners clockwise from top-left}]}
  demo/demo_text_recog.jpg  one word, tightly cropped
  demo/demo_text_recog.txt  that word

Usage: python tools/make_demo.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
}
SIZE = (1000, 700)
SEED = 7
JPEG_QUALITY = 95
RECOG_WORD = "serving"


# PP-OCRv4's recogniser drops some spaces ("OPEN24HOURS") with the font's own space width or
# red/navy ink, while wide gaps split lines in PaddleOCR-style detection (no dilation, as in
# ocrserve). Near-black ink with 1.25x spaces reads back exactly both in rapidocr-onnxruntime's
# pipeline and in ocrserve's (checked at 1.2x-1.3x); PP-OCRv6 reads it exactly too.
INK = (20, 20, 25)
WORD_GAP = 1.25


@dataclass(frozen=True)
class TextLine:
    """One line of demo text: what, where (top-left of its ink box), in which font and size."""

    text: str
    x: int
    y: int
    font: str
    size: int


LINES: tuple[TextLine, ...] = (
    TextLine("Welcome to ocrserve", 60, 45, "serif", 62),
    TextLine("OPEN 24 HOURS", 500, 150, "sans", 52),
    TextLine("Fresh Coffee", 80, 255, "sans-bold", 46),
    TextLine("Main Street 42", 520, 398, "sans", 50),
    TextLine("SALE 50% OFF", 90, 500, "sans", 60),
    TextLine("Books and Music", 560, 605, "serif-bold", 34),
)


def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """Load one of FONTS at ``size`` px, exiting with a clear message when DejaVu is missing."""
    path = FONT_DIR / FONTS[name]
    if not path.is_file():
        sys.exit(f"make_demo: font {path} not found; install it: apt-get install fonts-dejavu-core")
    return ImageFont.truetype(str(path), size)


def background(rng: random.Random) -> Image.Image:
    """A light diagonal gradient with faint noise, a few soft pastel shapes around the text."""
    w, h = SIZE
    img = Image.new("RGB", SIZE)
    px = img.load()
    assert px is not None
    for y in range(h):
        for x in range(w):
            t = (x / w + y / h) / 2
            n = rng.randint(-4, 4)
            px[x, y] = (int(246 - 20 * t) + n, int(242 - 10 * t) + n, int(228 + 14 * t) + n)
    draw = ImageDraw.Draw(img)
    draw.ellipse((760, 245, 960, 350), fill=(250, 214, 165))
    draw.rectangle((40, 360, 330, 460), fill=(200, 230, 205))
    draw.polygon([(420, 690), (500, 560), (580, 690)], fill=(190, 215, 240))
    sign = (495, 380, 925, 455)  # behind "Main Street 42"
    draw.rounded_rectangle(sign, radius=18, fill=(250, 250, 240), outline=(120, 140, 170), width=3)
    draw.ellipse((30, 600, 120, 690), fill=(235, 200, 225))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def draw_line(
    draw: ImageDraw.ImageDraw, line: TextLine, font: ImageFont.FreeTypeFont
) -> tuple[int, int, int, int]:
    """Draw ``line`` word by word so its ink box starts at (x, y); return that box."""
    left, top, _, _ = draw.textbbox((0, 0), line.text, font=font)
    x, y = float(line.x - left), float(line.y - top)
    gap = font.getlength(" ") * WORD_GAP
    boxes = []
    for word in line.text.split(" "):
        xy = (round(x), round(y))
        draw.text(xy, word, font=font, fill=INK)
        boxes.append(draw.textbbox(xy, word, font=font))
        x += font.getlength(word) + gap
    xs0, ys0, xs1, ys1 = zip(*boxes, strict=True)
    return round(min(xs0)), round(min(ys0)), round(max(xs1)), round(max(ys1))


def render_det(out: Path) -> list[dict[str, object]]:
    """Draw the scene and its lines; return the GT lines (tight ink boxes)."""
    rng = random.Random(SEED)
    img = background(rng)
    draw = ImageDraw.Draw(img)
    gt: list[dict[str, object]] = []
    for line in LINES:
        font = load_font(line.font, line.size)
        x1, y1, x2, y2 = draw_line(draw, line, font)
        gt.append({"text": line.text, "points": [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]})
    img.save(out / "demo_text_det.jpg", quality=JPEG_QUALITY)
    rows = ",\n".join("  " + json.dumps(g) for g in gt)
    (out / "demo_text_det.json").write_text('{"lines": [\n' + rows + "\n]}\n", encoding="utf-8")
    return gt


def render_recog(out: Path, word: str = RECOG_WORD) -> None:
    """Draw ``word`` dark on light as a tight crop about 56 px high."""
    font = load_font("sans", 40)
    left, top, right, bottom = (round(v) for v in font.getbbox(word))
    pad = 8
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), (244, 241, 232))
    ImageDraw.Draw(img).text((pad - left, pad - top), word, font=font, fill=(25, 25, 30))
    img.save(out / "demo_text_recog.jpg", quality=JPEG_QUALITY)
    (out / "demo_text_recog.txt").write_text(word + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and write the demo files."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "demo")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    gt = render_det(args.out)
    render_recog(args.out)
    print(f"wrote {len(gt)} lines and the word {RECOG_WORD!r} to {args.out}")


if __name__ == "__main__":
    main()

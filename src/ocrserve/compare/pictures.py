"""Pictures and reports of ``ocrserve compare``: local | served side by side, differences in red.

Each picture shows the image twice with the instances drawn on it: polygons with their scores,
recognised text rendered in a TrueType font (DejaVu Sans where the system has it, else Pillow's
built-in font). Green agrees, red differs (or has no counterpart; the other side's polygon is
outlined in blue beside it), grey scores below the display threshold. A footer lists the
differences. `write_reports` adds ``report.json`` and an ``index.html`` linking the pictures.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from ocrserve.compare.matching import ImageComparison, Instance

__all__ = ["PictureNames", "draw_comparison", "find_font", "write_reports"]

GREEN = (0, 150, 60)
RED = (225, 25, 25)
GREY = (150, 150, 150)
BLUE = (30, 110, 255)
INK = (25, 25, 25)
PAPER = (255, 255, 255)

#: Where common systems keep DejaVu Sans (Debian/Ubuntu, Fedora, Arch, Alpine, macOS, Windows).
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/ttf-dejavu/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
    "C:/Windows/Fonts/DejaVuSans.ttf",
    "C:/Windows/Fonts/arial.ttf",
)
_GAP = 12
_MAX_REASONS = 12

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_font() -> str | None:
    """The first TrueType font of `FONT_PATHS` that exists, or None."""
    return next((p for p in FONT_PATHS if Path(p).is_file()), None)


@functools.lru_cache(maxsize=8)
def font(size: int) -> Font:
    """A font of ``size`` pixels: DejaVu Sans, else Pillow's default (scalable since 10.1)."""
    path = find_font()
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, fnt: Font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    return int(right - left), int(bottom - top)


def _fit(draw: ImageDraw.ImageDraw, text: str, fnt: Font, width: float) -> str:
    """``text``, cut short with "..." to fit ``width`` pixels."""
    if _text_size(draw, text, fnt)[0] <= width:
        return text
    while text and _text_size(draw, text + "...", fnt)[0] > width:
        text = text[:-1]
    return text + "..."


def _display_scale(width: int, height: int) -> float:
    """Large images shrink to 1000 px, small crops grow to about 480 px (at most 8x)."""
    longest = max(width, height)
    if longest > 1000:
        return 1000 / longest
    if longest < 480:
        return min(480 / longest, 8.0)
    return 1.0


def _label(inst: Instance, task: str, index: int, differs: bool) -> str:
    score = inst.text_score if task == "e2e" else inst.score
    text = f"{inst.text} " if inst.text is not None else ""
    value = f"{text}{score:.3f}" if score is not None else text.strip()
    return f"#{index} {value}" if differs else value


def _draw_polygons(
    panel: Image.Image,
    mine: Sequence[Instance],
    other: Sequence[Instance],
    comp: ImageComparison,
    side: str,
    scale: float,
    score_thr: float,
) -> Image.Image:
    overlay = Image.new("RGBA", panel.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    differing = comp.differing(side)
    counterpart = {(p.local if side == "local" else p.served): p for p in comp.pairs}
    fnt = font(14)
    labels = []
    twins = []
    for i, inst in enumerate(mine):
        pts = [(x * scale, y * scale) for x, y in inst.vertices]
        if len(pts) < 2:
            continue
        differs = i in differing
        score = inst.text_score if comp.task == "e2e" else inst.score
        faint = not differs and score is not None and score < score_thr
        colour = RED if differs else GREY if faint else GREEN
        if differs and i in counterpart:
            pair = counterpart[i]
            twins.append(other[pair.served if side == "local" else pair.local])
        fill = RED + (60,) if differs else None
        draw.polygon(pts, outline=colour + (255,), fill=fill, width=3 if differs else 2)
        if not faint:
            corner = (min(x for x, _ in pts), min(y for _, y in pts))
            labels.append((corner, _label(inst, comp.task, i, differs), colour))
    for twin in twins:  # drawing replaces overlay pixels: outlines go over the fills
        draw.polygon([(x * scale, y * scale) for x, y in twin.vertices], outline=BLUE + (255,))
    placed: list[tuple[float, float, float, float]] = []
    for (x, y), text, colour in labels:  # labels last, above every outline
        w, h = _text_size(draw, text, fnt)
        box = _place_label(x, y, w + 6, h + 6, panel.size, placed)
        placed.append(box)
        draw.rectangle(box, fill=colour + (220,))
        draw.text((box[0] + 3, box[1] + 2), text, font=fnt, fill=PAPER + (255,))
    return Image.alpha_composite(panel.convert("RGBA"), overlay).convert("RGB")


def _place_label(
    x: float,
    y: float,
    w: float,
    h: float,
    size: tuple[int, int],
    placed: Sequence[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    """A ``w x h`` box just above ``(x, y)``, moved up or down by a line while it would cover
    a label already placed (small neighbouring polygons would otherwise hide each other's)."""
    x = min(max(0.0, x), max(0.0, size[0] - w))
    first = None
    for k in (0, -1, 1, -2, 2, -3, 3):
        top = min(max(0.0, y - h - 1 + k * h), max(0.0, size[1] - h))
        box = (x, top, x + w, top + h)
        first = first or box
        if not any(
            b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3] for b in placed
        ):
            return box
    return first or (x, y, x + w, y + h)


def _caption(comp: ImageComparison, side: str) -> tuple[str, tuple[int, int, int]]:
    mine = comp.local if side == "local" else comp.served
    if comp.task == "textrecog":
        return side, INK
    unmatched = comp.only_local if side == "local" else comp.only_served
    extra = f", {len(unmatched)} without counterpart" if unmatched else ""
    noun = "instance" if len(mine) == 1 else "instances"
    return f"{side}: {len(mine)} {noun}{extra}", RED if unmatched else INK


def _recognised(comp: ImageComparison) -> list[tuple[str, tuple[int, int, int]]]:
    """A recognizer's answers, one line per side (under the pictures: words can be long)."""
    lines = []
    for side, mine in (("local", comp.local), ("served", comp.served)):
        if not mine:
            lines.append((f"{side}: no answer", RED))
            continue
        inst = mine[0]
        if inst.char_scores:
            mean = sum(inst.char_scores) / len(inst.char_scores)
            score = f"{len(inst.char_scores)} character scores, mean {mean:.6f}"
        else:
            score = "no score" if inst.score is None else f"score {inst.score:.6f}"
        colour = RED if comp.differing(side) else GREEN
        lines.append((f"{side + ':':8}{inst.text!r}   {score}", colour))
    return lines


def draw_comparison(
    image: np.ndarray, comp: ImageComparison, path: str | Path, score_thr: float = 0.5
) -> Path:
    """Write the side-by-side PNG of ``comp`` on ``image`` (BGR uint8, as decoded) to ``path``."""
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    scale = _display_scale(rgb.width, rgb.height)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    base = rgb.resize(size, Image.Resampling.BICUBIC) if scale != 1.0 else rgb
    panels = [
        _draw_polygons(base, comp.local, comp.served, comp, "local", scale, score_thr),
        _draw_polygons(base, comp.served, comp.local, comp, "served", scale, score_thr),
    ]
    title_font, caption_font, small = font(20), font(18), font(15)
    reasons = comp.reasons()
    shown = reasons[:_MAX_REASONS]
    if len(reasons) > _MAX_REASONS:
        shown.append(f"... and {len(reasons) - _MAX_REASONS} more (report.json)")
    legend = "green: agrees   red: differs"
    if comp.task != "textrecog":
        legend += (
            f"   blue: the other side's polygon   grey: score below {score_thr:g} (not labelled)"
        )
    lines = []
    if comp.task == "textrecog":
        lines += [(text, ink, font(20)) for text, ink in _recognised(comp)]
    lines += [(text, RED, small) for text in shown] + [(legend, GREY, small)]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wanted = max(_text_size(probe, text, fnt)[0] for text, _, fnt in lines) + 2 * _GAP
    width = max(2 * base.width + 3 * _GAP, min(wanted, 1600), 640)
    heights = [_text_size(probe, "Ag#'", fnt)[1] + 6 for _, _, fnt in lines]
    title_h, caption_h = 40, _text_size(probe, "Ag'", caption_font)[1] + 16
    height = title_h + caption_h + base.height + _GAP + sum(heights) + _GAP
    sheet = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(sheet)
    verdict, colour = ("AGREE", GREEN) if comp.ok else (f"DIFFER ({len(reasons)})", RED)
    draw.rectangle((0, 0, width, title_h - 6), fill=colour)
    draw.text((_GAP, 8), f"{Path(comp.image).name}   {verdict}", font=title_font, fill=PAPER)
    top = title_h + caption_h
    for k, (panel, side) in enumerate(zip(panels, ("local", "served"))):
        x = _GAP + k * (base.width + _GAP)
        text, ink = _caption(comp, side)
        text = _fit(draw, text, caption_font, base.width)
        draw.text((x, title_h + 4), text, font=caption_font, fill=ink)
        sheet.paste(panel, (x, top))
        draw.rectangle((x - 1, top - 1, x + panel.width, top + panel.height), outline=GREY)
    y = top + base.height + _GAP
    for (text, ink, fnt), line_h in zip(lines, heights):
        draw.text((_GAP, y), _fit(draw, text, fnt, width - 2 * _GAP), font=fnt, fill=ink)
        y += line_h
    out = Path(path)
    sheet.save(out, format="PNG", optimize=True)
    return out


class PictureNames:
    """``STEM.png`` in the output folder for each image, unique within one run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._used: set[str] = set()

    def next(self, image: Path) -> Path:
        name, n = f"{image.stem}.png", 1
        while name in self._used or name in ("index.html", "report.json"):
            n += 1
            name = f"{image.stem}-{n}.png"
        self._used.add(name)
        return self.folder / name


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_reports(
    folder: Path, header: dict[str, Any], comparisons: Sequence[ImageComparison]
) -> Path:
    """Write ``report.json`` and ``index.html`` into ``folder``; return the index's path."""
    agree = sum(c.ok for c in comparisons)
    doc = {
        **header,
        "ok": agree == len(comparisons),
        "summary": {"images": len(comparisons), "agree": agree, "differ": len(comparisons) - agree},
        "images": [c.to_json() for c in comparisons],
    }
    (folder / "report.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    esc = html.escape
    rows = []
    for c in comparisons:
        reasons = c.reasons()
        more = f"<li>... {len(reasons) - 5} more in report.json</li>" if len(reasons) > 5 else ""
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons[:5]) + more
        picture = (
            f'<a href="{esc(c.picture)}"><img src="{esc(c.picture)}" loading="lazy" '
            'alt="local | served"></a>'
            if c.picture
            else "no picture"
        )
        rows.append(
            f'<tr class="{"ok" if c.ok else "bad"}"><td>{esc(Path(c.image).name)}</td>'
            f"<td>{'agree' if c.ok else 'DIFFER'}</td><td>{len(c.local)}</td>"
            f"<td>{len(c.served)}</td><td>{len(c.pairs)}</td>"
            f"<td>{_cell(c.max_vertex_diff, '.3f')}</td><td>{_cell(c.max_score_diff, '.2e')}</td>"
            f"<td>{c.text_mismatches}</td><td><ul>{items}</ul>{picture}</td></tr>"
        )
    tol = header.get("tolerances", {})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ocrserve compare: {esc(str(header.get("model_name", "")))}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #191919; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px;
vertical-align: top; text-align: right; }} td:first-child, td:last-child {{ text-align: left; }}
tr.bad td:nth-child(2), .bad {{ color: #e11919; font-weight: bold; }}
tr.ok td:nth-child(2), .ok {{ color: #00963c; font-weight: bold; }}
img {{ max-width: 720px; display: block; }} ul {{ margin: 0; padding-left: 1.2em; color: #e11919; }}
</style></head><body>
<h1>Served <code>{esc(str(header.get("model_name", "")))}</code> vs local
<code>{esc(" ".join(header.get("local_model", [])))}</code></h1>
<p class="{"ok" if doc["ok"] else "bad"}">{agree} of {len(comparisons)} images agree</p>
<p>Inference API {esc(str(header.get("inference_address", "")))}; tolerances: vertices
{tol.get("vertex_px")} px, scores {tol.get("score")}, instances matched at IoU
&ge; {tol.get("match_iou")}. Full data: <a href="report.json">report.json</a>.</p>
<table><tr><th>image</th><th>result</th><th>local</th><th>served</th><th>matched</th>
<th>max &Delta;vertex px</th><th>max &Delta;score</th><th>text</th>
<th>differences, picture</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index

"""Per-request options on a real server: the bundled ``ocr`` and ``ppocr_rec`` models and an
end-to-end archive that pins two options. Options given as query parameters, JSON fields and
multipart fields agree; each changes the answer as documented (docs/options.md); bad ones are
400 naming the option, and the server stays healthy."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.ppocr.paddle_archiver import archive_paddle
from ocrserve.ppocr.weights import weights_path
from tests.conftest import ENGINES, ServerProcess, engine_args, running
from tests.documents import pdf_of, text_page

WORDS = ["OPTIONS", "PAGES", "WORK"]
PINNED = {"drop_score": 0.9, "max_side": 960}


def _quiet(_: str) -> None:
    pass


def _page(lines: list[str], size: tuple[int, int] = (1280, 420)) -> bytes:
    """A white PNG with one word per line, large and black."""
    img = Image.new("RGB", size, "white")
    font = ImageFont.load_default(size=64)
    draw = ImageDraw.Draw(img)
    for k, word in enumerate(lines):
        draw.text((60 + 180 * k, 40 + 120 * k), word, fill="black", font=font)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


PAGE = _page(WORDS)


@pytest.fixture(scope="module", params=ENGINES)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The models, served by each engine in turn (options reach Ray replicas too)."""
    tmp = tmp_path_factory.mktemp("options")
    store = tmp / "store"
    build_bundled_archive("ocr", store)
    build_bundled_archive("ppocr_rec", store)
    archive_paddle(
        store, det=weights_path("det"), rec=weights_path("rec"), model_name="pinned",
        options=PINNED, progress=_quiet,
    )  # fmt: skip
    models = ["ocr=ocr.mar", "ppocr_rec=ppocr_rec.mar", "pinned=pinned.mar"]
    server = ServerProcess(
        tmp, "--model-store", str(store), "--models", *models, *engine_args(request)
    )
    yield from running(server)


def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


def _bad(resp: httpx.Response, *words: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 400 and body["type"] == "BadRequestException", body
    for word in words:
        assert word in body["message"], body


def _put(srv: ServerProcess, model: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
    kw.setdefault("content", PAGE)
    return httpx.put(f"{srv.url}/predictions/{model}", params=params, timeout=120, **kw)


def _texts(answer: dict[str, Any]) -> list[str]:
    return [line["text"] for line in answer["result"]]


def test_defaults_read_every_line(srv: ServerProcess) -> None:
    answer = _ok(_put(srv, "ocr"))
    assert _texts(answer) == WORDS
    assert all("char_scores" not in line for line in answer["result"])


def test_query_json_and_multipart_options_agree(srv: ServerProcess) -> None:
    by_query = _ok(_put(srv, "ocr", {"char_scores": "true", "drop_score": "0"}))
    doc = {"data": base64.b64encode(PAGE).decode(), "char_scores": True, "drop_score": 0}
    by_json = _ok(
        _put(srv, "ocr", content=json.dumps(doc), headers={"content-type": "application/json"})
    )
    by_form = _ok(
        httpx.post(
            f"{srv.url}/predictions/ocr",
            files={"data": ("page.png", PAGE, "image/png")},
            data={"char_scores": "yes", "drop_score": "0.0"},
            timeout=120,
        )
    )
    assert by_query == by_json == by_form
    for line in by_query["result"]:
        assert len(line["char_scores"]) == len(line["text"]) > 0
        mean = sum(line["char_scores"]) / len(line["char_scores"])
        assert mean == pytest.approx(line["text_score"], abs=1e-5)


def test_drop_score_and_detect_only(srv: ServerProcess) -> None:
    default = _ok(_put(srv, "ocr"))["result"]
    assert _ok(_put(srv, "ocr", {"drop_score": 1}))["result"] == []
    boxes = _ok(_put(srv, "ocr", {"detect_only": "true"}))["result"]
    assert all(set(line) == {"box", "box_score"} for line in boxes)
    key = sorted((line["box"], line["box_score"]) for line in default)
    assert sorted((line["box"], line["box_score"]) for line in boxes) == key


def test_box_score_threshold_sets_the_detectors_own(srv: ServerProcess) -> None:
    default = _ok(_put(srv, "ocr", {"detect_only": 1}))["result"]
    scores = sorted(line["box_score"] for line in default)
    assert len(scores) == len(WORDS)
    between = (scores[0] + scores[-1]) / 2  # keeps the lines scoring over it, and only those
    kept = _ok(_put(srv, "ocr", {"detect_only": 1, "box_score_threshold": between}))["result"]
    assert sorted(line["box_score"] for line in kept) == [s for s in scores if s >= between]
    assert 0 < len(kept) < len(default)
    assert _ok(_put(srv, "ocr", {"box_score_threshold": 1}))["result"] == []
    # (That a threshold under the model's own finds boxes it would have dropped is checked on a
    # probability map made for it: tests/unit/ppocr/test_ppocr.py.)


def test_max_side_detects_small_and_answers_in_image_pixels(srv: ServerProcess) -> None:
    default = _ok(_put(srv, "ocr"))["result"]
    small = _ok(_put(srv, "ocr", {"max_side": 640}))["result"]
    assert _texts({"result": small}) == WORDS  # crops are still cut from the full image
    for a, b in zip(default, small):
        assert max(b["box"][0::2]) > 640 or max(a["box"][0::2]) <= 640
        assert all(abs(x - y) <= 16 for x, y in zip(a["box"], b["box"])), (a["box"], b["box"])
    tiny = _ok(_put(srv, "ocr", {"max_side": 32, "detect_only": 1}))["result"]
    assert len(tiny) < len(default)  # at 32 pixels wide there is nothing left to find


def test_recognizer_char_scores(srv: ServerProcess) -> None:
    crop = io.BytesIO()
    text_page("WORD", (300, 90)).crop((20, 60, 300, 160)).save(crop, "PNG")
    plain = _ok(_put(srv, "ppocr_rec", content=crop.getvalue()))
    assert "char_scores" not in plain
    answer = _ok(_put(srv, "ppocr_rec", {"char_scores": "1"}, content=crop.getvalue()))
    assert answer["text"] == plain["text"] and len(answer["char_scores"]) == len(answer["text"])


def test_document_options(srv: ServerProcess) -> None:
    pdf = pdf_of([text_page(word) for word in ("ALPHA", "BRAVO", "CHARLIE")], dpi=72)
    head = {"content-type": "application/pdf"}
    pages = _ok(_put(srv, "ocr", {"pages": "2-3"}, content=pdf, headers=head))["pages"]
    assert [p["page"] for p in pages] == [2, 3]
    assert [" ".join(_texts(p)) for p in pages] == ["BRAVO", "CHARLIE"]
    one = _ok(_put(srv, "ocr", {"pages": "1", "dpi": 144}, content=pdf, headers=head))["pages"]
    assert [(p["page"], p["width"], p["height"]) for p in one] == [(1, 1280, 480)]
    _bad(_put(srv, "ocr", {"pages": "4"}, content=pdf, headers=head), "pages", "3 page")


@pytest.mark.parametrize(
    ("model", "params", "words"),
    [
        ("ocr", {"colour": "red"}, ["Unknown option 'colour'", "box_score_threshold"]),
        ("ocr", {"drop_score": "2"}, ["'drop_score'", "between 0 and 1"]),
        ("ocr", {"drop_score": "nan"}, ["'drop_score'", "finite"]),
        ("ocr", {"max_side": "12.5"}, ["'max_side'", "integer"]),
        ("ocr", {"max_side": "8"}, ["'max_side'", "between 32 and 16384"]),
        ("ocr", {"char_scores": "maybe"}, ["'char_scores'", "true or false"]),
        ("ocr", {"pages": "3-1"}, ["'pages'"]),
        ("ocr", {"pages": "first"}, ["'pages'"]),
        ("ppocr_rec", {"drop_score": "0.5"}, ["Unknown option 'drop_score' for a textrecog"]),
        ("pinned", {"drop_score": "0.5"}, ["'drop_score' is pinned to 0.9"]),
    ],
)
def test_bad_options_are_400_naming_them(
    srv: ServerProcess, model: str, params: dict[str, str], words: list[str]
) -> None:
    _bad(_put(srv, model, params), *words)


def test_options_given_twice_are_400(srv: ServerProcess) -> None:
    _bad(
        httpx.put(f"{srv.url}/predictions/ocr?drop_score=0&drop_score=1", content=PAGE),
        "'drop_score' is given twice",
    )
    doc = json.dumps({"data": base64.b64encode(PAGE).decode(), "drop_score": 0})
    resp = _put(srv, "ocr", {"drop_score": "0"}, content=doc,
                headers={"content-type": "application/json"})  # fmt: skip
    _bad(resp, "'drop_score' is given both in the query and in the body")
    resp = httpx.post(
        f"{srv.url}/predictions/ocr",
        files={"data": ("p.png", PAGE), "extra": ("x", b"1")},  # another file: not an option
        data={"drop_score": "0", "colour": "red"},
    )
    _bad(resp, "Unknown option 'colour'")
    assert httpx.get(f"{srv.url}/ping").json() == {"status": "Healthy"}


def test_pinned_options_hold_and_are_shown(srv: ServerProcess) -> None:
    answer = _ok(_put(srv, "pinned", {"drop_score": "0.9"}))
    assert all(line["text_score"] >= 0.9 for line in answer["result"])
    assert _ok(_put(srv, "pinned")) == answer
    (describe,) = httpx.get(f"{srv.management_url}/models/pinned").json()
    assert describe["pinnedOptions"] == PINNED
    models = {m["modelName"]: m for m in httpx.get(f"{srv.url}/ocrserve/models").json()["models"]}
    schema = models["pinned"]["options"]["properties"]
    assert schema["drop_score"]["enum"] == [0.9] and "enum" not in schema["char_scores"]
    rec_options = {"char_scores", "dpi", "pages", "page_image"}
    assert set(models["ppocr_rec"]["options"]["properties"]) == rec_options


def test_openapi_lists_the_options(srv: ServerProcess) -> None:
    api = httpx.get(f"{srv.url}/api-description").json()
    params = api["paths"]["/predictions/{model_name}"]["post"]["parameters"]
    query = {p["name"]: p for p in params if p["in"] == "query"}
    assert set(query) == {
        "box_score_threshold", "max_side", "drop_score", "detect_only", "char_scores",
        "reading_order", "orientation", "dpi", "pages", "text_layer", "page_image", "format",
    }  # fmt: skip
    assert query["drop_score"]["schema"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    schemas = api["components"]["schemas"]
    assert set(schemas["textrecogOptions"]["properties"]) == {
        "char_scores", "dpi", "pages", "page_image",
    }  # fmt: skip
    assert query["text_layer"]["schema"]["enum"] == ["auto", "ocr", "only"]


def test_pinned_archive_refuses_bad_pins(tmp_path: Path) -> None:
    from ocrserve.errors import ArchiveError

    with pytest.raises(ArchiveError, match="'drop_score' must be between 0 and 1"):
        archive_paddle(tmp_path, det=weights_path("det"), rec=weights_path("rec"),
                       options={"drop_score": 3}, progress=_quiet)  # fmt: skip
    with pytest.raises(ArchiveError, match="--option drop_score: no archive written here"):
        archive_paddle(tmp_path, rec=weights_path("rec"), options={"drop_score": 0.5},
                       progress=_quiet)  # fmt: skip


def test_document_options_and_streamed_pages_on_each_engine(srv: ServerProcess) -> None:
    """A PDF's pages streamed (Ray replicas answer a document whole: its lines come at once),
    with the document options reaching the reader on either engine."""
    pdf = pdf_of([text_page("ALPHA"), text_page("BRAVO"), text_page("CHARLIE")])
    resp = httpx.put(
        f"{srv.url}/predictions/ocr?pages=2-3&page_image=true&text_layer=ocr", content=pdf,
        headers={"accept": "application/x-ndjson"}, timeout=300,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-page-count"] == "2"
    pages = [json.loads(line) for line in resp.text.splitlines()]
    assert [p["page"] for p in pages] == [2, 3]
    assert [" ".join(line["text"] for line in p["result"]) for p in pages] == ["BRAVO", "CHARLIE"]
    assert all(p["image"].startswith("data:image/jpeg;base64,") for p in pages)

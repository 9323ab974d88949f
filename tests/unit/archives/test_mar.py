"""Archive writing, reading and safe extraction, with crafted hostile archives."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from ocrserve.archives.mar import (
    HANDLER,
    MANIFEST_PATH,
    extract_archive,
    new_manifest,
    read_manifest,
    write_archive,
)
from ocrserve.errors import ArchiveError

GOOD_SECTION = {"task": "textrecog", "engine": "onnx", "kind": "ppocr", "config": "config.json"}


def _manifest_json(**model: str) -> bytes:
    section = {"format": 1, **GOOD_SECTION}
    fields = {"modelName": "m", "modelVersion": "1.0", "serializedFile": "w.onnx",
              "handler": HANDLER, **model}  # fmt: skip
    return json.dumps({"runtime": "python", "model": fields, "ocrserve": section}).encode()


def _zip(path: Path, members: dict[str, bytes], *, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _good(tmp_path: Path, **extra: bytes) -> dict[str, bytes]:
    return {MANIFEST_PATH: _manifest_json(), "w.onnx": b"onnx", "config.json": b"{}", **extra}


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    manifest = new_manifest("dbnet", "2.0", "w.onnx", GOOD_SECTION)
    out = write_archive(
        tmp_path / "store" / "dbnet.mar", manifest, {"w.onnx": b"weights", "config.json": b"{}"}
    )
    back = read_manifest(out)
    assert (back.model_name, back.model_version, back.task) == ("dbnet", "2.0", "textrecog")
    assert back.handler == HANDLER and back.archiver_version.startswith("ocrserve-")
    doc = json.loads(zipfile.ZipFile(out).read(MANIFEST_PATH))
    assert set(doc) >= {"createdOn", "runtime", "model", "archiverVersion"}
    assert set(doc["model"]) >= {"modelName", "modelVersion", "serializedFile", "handler"}
    dest = tmp_path / "x"
    extract_archive(out, dest)
    assert (dest / "w.onnx").read_bytes() == b"weights"


def test_existing_file_needs_force(tmp_path: Path) -> None:
    manifest = new_manifest("m", "1.0", "w.onnx", GOOD_SECTION)
    write_archive(tmp_path / "m.mar", manifest, {"w.onnx": b"1"})
    with pytest.raises(ArchiveError, match="already exists; use --force"):
        write_archive(tmp_path / "m.mar", manifest, {"w.onnx": b"2"})
    write_archive(tmp_path / "m.mar", manifest, {"w.onnx": b"2"}, force=True)


@pytest.mark.parametrize(
    "member,needle",
    [("../evil.txt", "outside the archive"), ("a/../../evil.txt", "outside the archive"),
     ("/etc/evil", "absolute path"), ("C:/evil", "absolute path"), ("..\\evil", "outside")],
)  # fmt: skip
def test_path_traversal_refused(tmp_path: Path, member: str, needle: str) -> None:
    mar = _zip(tmp_path / "bad.mar", _good(tmp_path, **{member: b"x"}))
    with pytest.raises(ArchiveError, match=needle):
        extract_archive(mar, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out").exists()


def test_symlink_refused(tmp_path: Path) -> None:
    mar = _zip(tmp_path / "bad.mar", _good(tmp_path), link="w2.onnx")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract_archive(mar, tmp_path / "out")


def test_oversized_content_refused(tmp_path: Path) -> None:
    mar = _zip(tmp_path / "big.mar", _good(tmp_path, **{"big.bin": b"\0" * 5000}))
    with pytest.raises(ArchiveError, match="exceeds the cap"):
        extract_archive(mar, tmp_path / "out", max_bytes=4000)


def test_size_header_that_lies_is_refused(tmp_path: Path) -> None:
    mar = _zip(tmp_path / "lie.mar", _good(tmp_path, **{"big.bin": b"\0" * 5000}))
    data = bytearray(mar.read_bytes())
    # Declare 10 bytes in the central directory entry of big.bin (offset 24: uncompressed size).
    entry = data.find(b"PK\x01\x02", data.find(b"big.bin") + 1)
    while data[entry + 46 : entry + 53] != b"big.bin":
        entry = data.find(b"PK\x01\x02", entry + 1)
    data[entry + 24 : entry + 28] = (10).to_bytes(4, "little")
    mar.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="big.bin"):
        extract_archive(mar, tmp_path / "out", max_bytes=4999)


@pytest.mark.parametrize(
    "members,needle",
    [({"w.onnx": b"x"}, "no MAR-INF/MANIFEST.json"),
     ({MANIFEST_PATH: b"{not json"}, "not valid JSON"),
     ({MANIFEST_PATH: b"[]"}, "no 'model' object"),
     ({MANIFEST_PATH: json.dumps({"model": {"modelName": "m"}}).encode()},
      "lacks model.serializedFile"),
     ({MANIFEST_PATH: _manifest_json(modelName="../x")}, "Invalid model name"),
     ({MANIFEST_PATH: _manifest_json()}, "names 'w.onnx', which is missing")],
)  # fmt: skip
def test_bad_manifest_refused(tmp_path: Path, members: dict[str, bytes], needle: str) -> None:
    mar = _zip(tmp_path / "bad.mar", members)
    with pytest.raises(ArchiveError, match=needle):
        extract_archive(mar, tmp_path / "out")


def test_unknown_task_refused(tmp_path: Path) -> None:
    doc = json.loads(_manifest_json())
    doc["ocrserve"]["task"] = "kie"
    mar = _zip(tmp_path / "bad.mar", {**_good(tmp_path), MANIFEST_PATH: json.dumps(doc).encode()})
    with pytest.raises(ArchiveError, match="unknown task 'kie'"):
        read_manifest(mar)


def test_foreign_handler_is_never_accepted(tmp_path: Path) -> None:
    doc = {"model": {"modelName": "m", "serializedFile": "m.pt", "handler": "my_handler.py"}}
    mar = _zip(tmp_path / "ts.mar", {MANIFEST_PATH: json.dumps(doc).encode(), "m.pt": b"x",
                                     "my_handler.py": b"import os"})  # fmt: skip
    with pytest.raises(ArchiveError, match="never runs code from archives"):
        read_manifest(mar)


def test_not_a_zip(tmp_path: Path) -> None:
    bad = tmp_path / "junk.mar"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ArchiveError, match="junk.mar: not a readable model archive"):
        read_manifest(bad)


def test_legacy_mmocr_manifest_is_recognised(tmp_path: Path) -> None:
    model = {"modelName": "dbnet", "serializedFile": "dbnet.pth", "handler": "mmocr_handler.py",
             "modelFile": "config.py", "modelVersion": "1.0"}  # fmt: skip
    doc = {"runtime": "python", "model": model}
    mar = _zip(tmp_path / "dbnet.mar", {MANIFEST_PATH: json.dumps(doc).encode()})
    manifest = read_manifest(mar)
    assert manifest.is_legacy_mmocr and manifest.task is None

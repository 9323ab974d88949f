"""Locating and preparing archives from a model store and the bundled store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocrserve.archives.bundled import build_bundled_archive, ensure_bundled_store
from ocrserve.archives.mar import read_manifest
from ocrserve.archives.store import ModelStore, mmocr_task
from ocrserve.errors import ArchiveError, ConfigError


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_bundled_store(tmp_path_factory.mktemp("bundled"))


def test_bundled_store_has_every_model(bundled: Path) -> None:
    names = {p.stem for p in bundled.glob("*.mar")}
    assert names == {"ppocr_det", "ppocr_rec", "ocr"}
    manifest = read_manifest(bundled / "ocr.mar")
    assert manifest.task == "e2e" and manifest.ocrserve["engine"] == "onnx"
    assert set(manifest.ocrserve["files"]) == {"det", "cls", "rec"}


def test_bundled_store_is_rebuilt_when_stale(tmp_path: Path) -> None:
    build_bundled_archive("ppocr_rec", tmp_path)
    (tmp_path / "ppocr_det.mar").write_bytes(b"corrupt")
    ensure_bundled_store(tmp_path)
    assert read_manifest(tmp_path / "ppocr_det.mar").model_name == "ppocr_det"


def test_bundled_archive_of_other_settings_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same version, other settings (another checkout sharing the cache, or a new weights
    package): the cached archive is not served, it is rebuilt."""
    from ocrserve.archives import bundled as bundled_module

    build_bundled_archive("ppocr_rec", tmp_path)
    before = read_manifest(tmp_path / "ppocr_rec.mar").ocrserve["bundle"]
    other = {**bundled_module.DEFAULT_CONFIG, "rec": {"batch_num": 99}}
    monkeypatch.setattr(bundled_module, "DEFAULT_CONFIG", other)
    ensure_bundled_store(tmp_path)
    after = read_manifest(tmp_path / "ppocr_rec.mar").ocrserve["bundle"]
    assert after != before and after == bundled_module.bundle_fingerprint("ppocr_rec")


def test_entries(tmp_path: Path, bundled: Path) -> None:
    (tmp_path / "b.mar").write_bytes(b"")
    (tmp_path / "a.mar").write_bytes(b"")
    store = ModelStore(tmp_path, bundled)
    assert store.entries(("all",)) == [(None, "a.mar"), (None, "b.mar")]
    assert store.entries(("x=a.mar,b.mar", "ocr")) == [
        ("x", "a.mar"),
        (None, "b.mar"),
        (None, "ocr"),
    ]
    assert ModelStore(None, bundled).entries(("all",)) == [
        (None, "ppocr_det"), (None, "ppocr_rec"), (None, "ocr")]  # fmt: skip
    with pytest.raises(ConfigError, match="not a folder"):
        ModelStore(tmp_path / "missing", bundled).entries(("all",))


def test_locate(tmp_path: Path, bundled: Path) -> None:
    shutil.copy(bundled / "ppocr_rec.mar", tmp_path / "rec.mar")
    store = ModelStore(tmp_path, bundled)
    assert store.locate("rec.mar") == tmp_path / "rec.mar"
    assert store.locate("rec") == tmp_path / "rec.mar"
    assert store.locate("ocr") == bundled / "ocr.mar"
    with pytest.raises(ArchiveError, match="Relative path is not allowed"):
        store.locate("../rec.mar")
    with pytest.raises(ArchiveError, match="Model not found at: nope .*bundled models: ocr"):
        store.locate("nope")


def test_prepare_all_reports_bad_archive_and_keeps_good(tmp_path: Path, bundled: Path) -> None:
    shutil.copy(bundled / "ppocr_rec.mar", tmp_path / "good.mar")
    (tmp_path / "bad.mar").write_bytes(b"PK not really")
    store = ModelStore(tmp_path, bundled)
    try:
        specs, failures = store.prepare_all(("all",))
        assert [(s.name, s.task, s.url) for s in specs] == [("ppocr_rec", "textrecog", "good.mar")]
        assert Path(specs[0].model_dir, "rec.onnx").is_file()
        assert [(f.name, f.url) for f in failures] == [("bad", "bad.mar")]
        assert "bad.mar: not a readable model archive" in failures[0].reason
        renamed, _ = store.prepare_all(("reader=good.mar",))
        assert renamed[0].name == "reader"
    finally:
        store.close()
    assert not store.work.exists()


def test_mmocr_task() -> None:
    assert mmocr_task({"model": {"type": "DBNet"}}, "x") == "textdet"
    assert mmocr_task({"model": {"type": "CRNNNet"}}, "x") == "textrecog"
    with pytest.raises(ArchiveError, match="unknown MMOCR model type 'Foo'"):
        mmocr_task({"model": {"type": "Foo"}}, "x")


def test_bundled_store_is_made_only_when_a_bundled_model_is_named(
    tmp_path: Path, bundled: Path
) -> None:
    shutil.copy(bundled / "ppocr_rec.mar", tmp_path / "rec.mar")
    calls: list[int] = []

    def make() -> Path:
        calls.append(1)
        return bundled

    store = ModelStore(tmp_path, make)
    assert store.locate("rec") == tmp_path / "rec.mar" and not calls
    assert store.locate("ocr") == bundled / "ocr.mar"
    assert store.locate("ppocr_det") == bundled / "ppocr_det.mar"
    assert calls == [1]

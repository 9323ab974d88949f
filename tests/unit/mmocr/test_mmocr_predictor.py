"""MMOCRPredictor on small randomly initialised models: results, batching, weights, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ocrserve.errors import CheckpointError, ConfigError, InvalidInput, ModelLoadError
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
from ocrserve.mmocr.models import build_model
from ocrserve.predictor import Predictor
from tests.unit.mmocr.models.test_crnn import crnn_config
from tests.unit.mmocr.models.test_dbnet import dbnet_config
from tests.unit.mmocr.pipelines.test_ocr_transforms import CRNN_TEST_PIPELINE
from tests.unit.mmocr.pipelines.test_transforms import DBNET_TEST_PIPELINE


def _det_config(**head: Any) -> dict[str, Any]:
    pipeline = json.loads(json.dumps(DBNET_TEST_PIPELINE))
    pipeline[1]["img_scale"] = [128, 64]
    return {"model": dbnet_config(**head), "data": {"test": {"pipeline": pipeline}}}


def _rec_config(**convertor: Any) -> dict[str, Any]:
    datasets = [{"type": "OCRDataset", "pipeline": None}]
    test = {"type": "UniformConcatDataset", "datasets": datasets, "pipeline": CRNN_TEST_PIPELINE}
    return {"model": crnn_config(**convertor), "data": {"test": test}}


def _weights(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model(config["model"])
    with torch.no_grad():  # a threshold map below the probabilities, so that text is found
        for name, p in model.named_parameters():
            if name == "bbox_head.binarize.6.bias":
                p.fill_(3.0)
    return model.state_dict()


def _images(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(40, 70, 3), (64, 32, 3), (40, 70, 3), (30, 90, 3)]
    return [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]


@pytest.fixture(scope="module")
def detector() -> MMOCRPredictor:
    config = _det_config()
    return MMOCRPredictor(config, _weights(config))


@pytest.fixture(scope="module")
def recognizer() -> MMOCRPredictor:
    config = _rec_config()
    return MMOCRPredictor(config, _weights(config))


def test_detector_results(detector: MMOCRPredictor) -> None:
    assert isinstance(detector, Predictor)
    assert detector.task == "textdet" and detector.exif_orientation is False
    results = detector.predict(_images())
    assert len(results) == 4
    for result in results:
        assert set(result) == {"boundary_result", "filename"} and result["filename"] is None
        for boundary in result["boundary_result"]:
            assert len(boundary) == 9 and 0.3 <= boundary[-1] <= 1.0
    assert any(r["boundary_result"] for r in results)
    json.dumps(results)


def test_recognizer_results(recognizer: MMOCRPredictor) -> None:
    assert isinstance(recognizer, Predictor)
    assert recognizer.task == "textrecog" and recognizer.exif_orientation is True
    results = recognizer.predict(_images())
    for result in results:
        assert set(result) == {"text", "score"} and isinstance(result["text"], str)
        assert isinstance(result["score"], float)
        assert set(result["text"]) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    json.dumps(results)


def _assert_close(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    # Batched convolutions may round differently in the last bits; nothing more.
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        if "text" in x:
            assert x["text"] == y["text"] and x["score"] == pytest.approx(y["score"], abs=1e-6)
        else:
            assert len(x["boundary_result"]) == len(y["boundary_result"])
            for u, v in zip(x["boundary_result"], y["boundary_result"]):
                assert u == pytest.approx(v, abs=1e-4)


@pytest.mark.parametrize("kind", ["detector", "recognizer"])
def test_batch_equals_one_by_one(kind: str, request: pytest.FixtureRequest) -> None:
    predictor: MMOCRPredictor = request.getfixturevalue(kind)
    images = _images()
    single = [predictor.predict([im])[0] for im in images]
    _assert_close(predictor.predict(images), single)
    predictor.max_batch_size = 1
    try:
        assert predictor.predict(images) == single
    finally:
        predictor.max_batch_size = 8


def test_recognition_score_is_the_aug_test_mean(recognizer: MMOCRPredictor) -> None:
    image = _images()[0]
    samples = recognizer.preprocess(image)
    outputs = recognizer.forward(samples)
    indexes, scores = recognizer.convertor.tensor2idx(outputs[0], [samples[0].meta])
    text = recognizer.convertor.idx2str(indexes)[0]
    expected = sum(scores[0]) / max(1, len(text))
    assert recognizer.predict([image])[0] == {"text": text, "score": expected}


def test_missing_and_unexpected_keys_are_listed() -> None:
    config = _det_config()
    state = _weights(config)
    del state["bbox_head.binarize.0.weight"]
    state["bbox_head.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        MMOCRPredictor(config, state)
    assert "missing key: bbox_head.binarize.0.weight" in err.value.message
    assert "unexpected key: bbox_head.extra.weight" in err.value.message


def test_wrong_shapes_are_listed() -> None:
    config = _det_config()
    state = _weights(config)
    state["bbox_head.binarize.6.bias"] = torch.zeros(2)
    with pytest.raises(
        CheckpointError, match=r"binarize\.6\.bias \(checkpoint \(2,\), model \(1,\)\)"
    ):
        MMOCRPredictor(config, state)


def test_mmocr1_names_give_the_same_answers(detector: MMOCRPredictor) -> None:
    config = _det_config()
    state = {k.replace("bbox_head.", "det_head.", 1): v for k, v in _weights(config).items()}
    renamed = MMOCRPredictor(config, state)
    images = _images()
    assert renamed.predict(images) == detector.predict(images)


def test_options_and_errors() -> None:
    config = _det_config()
    state = _weights(config)
    assert MMOCRPredictor(config, state, exif_orientation=True).exif_orientation is True
    with pytest.raises(ModelLoadError, match="Invalid device"):
        MMOCRPredictor(config, state, device="gpu:7")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            MMOCRPredictor(config, state, device="cuda")
    with pytest.raises(ConfigError, match="no model"):
        MMOCRPredictor({"data": {}}, state)
    with pytest.raises(InvalidInput, match="uint8"):
        MMOCRPredictor(config, state).predict([np.zeros((8, 8, 3), np.float32)])


def test_detectors_take_one_variant_per_image() -> None:
    config = _det_config()
    config["data"]["test"]["pipeline"][1]["img_scale"] = [[128, 64], [64, 32]]
    predictor = MMOCRPredictor(config, _weights(config))
    with pytest.raises(ConfigError, match="one test-time variant"):
        predictor.predict(_images()[:1])


def test_from_files_with_a_dict_file(tmp_path: Path) -> None:
    (tmp_path / "chars.txt").write_text("a\nb\nc\n")
    config = _rec_config(dict_file="chars.txt", dict_type="DICT90")
    state = _weights(_rec_config(dict_file=str(tmp_path / "chars.txt")))
    assert state["decoder.decoder.1.embedding.weight"].shape[0] == 4  # <BLK> a b c
    config_file = tmp_path / "crnn.py"
    config_file.write_text(f"model = {config['model']!r}\ndata = {config['data']!r}\n")
    checkpoint = tmp_path / "crnn.pth"
    torch.save({"meta": {"mmocr_version": "0.6.3"}, "state_dict": state}, checkpoint)
    predictor = MMOCRPredictor.from_files(config_file, checkpoint)
    (result,) = predictor.predict(_images()[:1])
    assert set(result["text"]) <= {"a", "b", "c"}


def test_lean_detector_gives_the_same_boundaries_from_one_channel(
    detector: MMOCRPredictor,
) -> None:
    config = _det_config()
    lean = MMOCRPredictor(config, _weights(config), lean=True)
    images = _images()
    samples = lean.preprocess(images[0])
    assert lean.forward(samples)[0].shape[1] == 1  # probability map only
    assert detector.forward(detector.preprocess(images[0]))[0].shape[1] == 3
    assert lean.channels_last and not detector.channels_last
    for got, want in zip(lean.predict(images), detector.predict(images)):
        assert len(got["boundary_result"]) == len(want["boundary_result"])
        for a, b in zip(got["boundary_result"], want["boundary_result"]):
            assert a[:-1] == b[:-1] and abs(a[-1] - b[-1]) < 1e-6


def test_cuda_precision_is_full_fp32_unless_tf32_is_asked_for() -> None:
    from ocrserve.mmocr.mmocr_predictor import set_cuda_precision

    before = torch.backends.cudnn.allow_tf32
    try:
        set_cuda_precision(False)
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
        set_cuda_precision(True)
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = before


def test_request_options(detector: MMOCRPredictor, recognizer: MMOCRPredictor) -> None:
    """``box_score_threshold`` sets DBNet's min_text_score (lower finds more, higher fewer),
    ``max_side`` detects on a smaller image answered in the image's pixels, and
    ``char_scores`` gives the characters' scores of the answered text."""
    images = _images()
    default = detector.predict(images)
    scores = [b[-1] for r in default for b in r["boundary_result"]]
    assert min(scores) >= 0.3 and len(set(scores)) > 2  # DBNet's own threshold
    cut = sorted(scores)[len(scores) // 2]
    high = detector.predict(images, {"box_score_threshold": cut})
    assert sorted(b[-1] for r in high for b in r["boundary_result"]) == sorted(
        s for s in scores if s >= cut
    )
    assert detector.postprocessor.min_text_score == 0.3  # the request changed a copy
    detector.postprocessor.min_text_score = cut  # a model whose own threshold is higher
    try:
        assert detector.predict(images) == high
        assert detector.predict(images, {"box_score_threshold": 0.3}) == default
    finally:
        detector.postprocessor.min_text_score = 0.3
    big = np.ascontiguousarray(np.repeat(np.repeat(images[0], 4, axis=0), 4, axis=1))
    (shrunk,) = detector.predict([big], {"max_side": 70})
    (direct,) = detector.predict([images[0]])
    assert len(shrunk["boundary_result"]) == len(direct["boundary_result"])
    for s, d in zip(shrunk["boundary_result"], direct["boundary_result"]):
        assert s[:-1] == pytest.approx([4 * v for v in d[:-1]], abs=1e-3)
        assert s[-1] == pytest.approx(d[-1], abs=1e-6)
    for plain, with_chars in zip(
        recognizer.predict(images), recognizer.predict(images, {"char_scores": True})
    ):
        assert with_chars["text"] == plain["text"] and with_chars["score"] == plain["score"]
        assert len(with_chars["char_scores"]) == len(plain["text"])
        total = sum(with_chars["char_scores"]) / max(1, len(plain["text"]))
        assert total == pytest.approx(plain["score"])

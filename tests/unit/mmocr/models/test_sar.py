"""SAR: ResNet31OCR + SAREncoder + ParallelSARDecoder or SequentialSARDecoder, and the attention
label convertor."""

from __future__ import annotations

from typing import Any

import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.decoders.sequential_sar_decoder import _lstm_step
from ocrserve.mmocr.pipelines.postprocess import build_convertor

CONVERTOR = {"type": "AttnConvertor", "dict_type": "DICT90", "with_unknown": True}


def sar_config() -> dict[str, Any]:
    return {
        "type": "SARNet",
        "backbone": {"type": "ResNet31OCR", "channels": [4, 8, 8, 8, 16, 16, 16]},
        "encoder": {"type": "SAREncoder", "enc_do_rnn": 0.1, "d_model": 16, "d_enc": 16},
        "decoder": {"type": "ParallelSARDecoder", "d_model": 16, "d_enc": 16, "d_k": 8,
                    "pred_concat": True, "pred_dropout": 0.1},
        "loss": {"type": "SARLoss"},
        "label_convertor": CONVERTOR,
        "max_seq_len": 5,
    }  # fmt: skip


def test_attn_convertor_indexes_as_mmocr() -> None:
    convertor = build_convertor({**CONVERTOR, "max_seq_len": 30})
    assert convertor.num_classes() == 93
    assert (convertor.unknown_idx, convertor.start_idx, convertor.end_idx) == (90, 91, 91)
    assert convertor.padding_idx == 92
    assert convertor.idx2char[90:] == ["<UKN>", "<BOS/EOS>", "<PAD>"]
    abi = build_convertor({"type": "ABIConvertor", "dict_type": "DICT36", "with_unknown": False})
    assert (abi.start_idx, abi.end_idx, abi.padding_idx) == (36, 36, 37)
    separate = build_convertor({**CONVERTOR, "start_end_same": False})
    assert (separate.start_idx, separate.end_idx, separate.padding_idx) == (91, 92, 93)


def test_attn_convertor_skips_padding_and_stops_at_end() -> None:
    convertor = build_convertor(CONVERTOR)
    probs = torch.zeros(1, 5, 93)
    for step, index in enumerate([10, 92, 11, 91, 12]):
        probs[0, step, index] = 0.5 + step / 10
    indexes, scores = convertor.tensor2idx(probs)
    assert indexes == [[10, 11]] and convertor.idx2str(indexes) == ["ab"]
    assert scores[0] == [0.5, 0.699999988079071]


def test_sar_output_shape_and_masking() -> None:
    model = build_model(sar_config())
    names = set(model.state_dict())
    assert {"backbone.block4.0.downsample.0.weight", "encoder.rnn_encoder.weight_ih_l1",
            "decoder.conv3x3_1.weight", "decoder.prediction.bias"} <= names  # fmt: skip
    img = torch.randn(2, 3, 48, 64)
    with torch.inference_mode():
        out = model(img, [{"valid_ratio": 1.0}, {"valid_ratio": 0.5}])
    assert out.shape == (2, 5, 92)
    assert torch.allclose(out.sum(-1), torch.ones(2, 5), atol=1e-5)
    # Columns past the valid width do not change the answer.
    noisy = img.clone()
    noisy[1, :, :, 40:] = torch.randn(3, 48, 24)
    with torch.inference_mode():
        again = model(noisy, [{"valid_ratio": 1.0}, {"valid_ratio": 0.5}])
    assert torch.allclose(out[1], again[1], atol=1e-6)


def test_sequential_sar_output_shape_and_masking() -> None:
    cfg = sar_config()
    cfg["decoder"] = {**cfg["decoder"], "type": "SequentialSARDecoder", "dec_do_rnn": 0}
    model = build_model(cfg)
    names = set(model.state_dict())
    assert {"decoder.rnn_decoder_layer1.weight_ih", "decoder.rnn_decoder_layer2.bias_hh",
            "decoder.conv1x1_1.weight", "decoder.conv1x1_2.bias"} <= names  # fmt: skip
    assert model.state_dict()["decoder.conv1x1_1.weight"].shape == (8, 16, 1, 1)
    img = torch.randn(2, 3, 48, 64)
    with torch.inference_mode():
        out = model(img, [{"valid_ratio": 1.0}, {"valid_ratio": 0.5}])
    assert out.shape == (2, 5, 92)
    assert torch.allclose(out.sum(-1), torch.ones(2, 5), atol=1e-5)
    noisy = img.clone()
    noisy[1, :, :, 40:] = torch.randn(3, 48, 24)
    with torch.inference_mode():
        again = model(noisy, [{"valid_ratio": 1.0}, {"valid_ratio": 0.5}])
    assert torch.allclose(out[1], again[1], atol=1e-6)


def test_sequential_sar_lstm_step_is_lstm_cell() -> None:
    cell = torch.nn.LSTMCell(6, 6)
    x, h, c = torch.randn(3, 6), torch.randn(3, 6), torch.randn(3, 6)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(cell(x, (h, c)), _lstm_step(cell, x, h, c)))

"""The numpy activations and tensor transforms against the torch operations they replace."""

from __future__ import annotations

import numpy as np
import torch

from ocrserve.mmocr.pipelines.ocr_transforms import NormalizeOCR, ToTensorOCR
from ocrserve.mmocr.pipelines.postprocess.activations import as_float32, sigmoid, softmax

ULP = float(np.finfo(np.float32).eps)


def test_sigmoid_is_torchs_within_one_ulp() -> None:
    x = (np.random.default_rng(0).standard_normal((3, 64, 64)) * 8).astype(np.float32)
    x[0, 0, :4] = [-200.0, 200.0, 0.0, -88.8]  # exp overflows: 0, as torch
    got, want = sigmoid(x), torch.sigmoid(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=ULP, atol=ULP / 2)
    assert got[0, 0, 0] == 0.0 and got[0, 0, 1] == 1.0 and got[0, 0, 2] == 0.5


def test_softmax_is_torchs_within_a_few_ulp() -> None:
    x = (np.random.default_rng(1).standard_normal((4, 26, 37)) * 5).astype(np.float32)
    got = softmax(x, axis=2)
    want = torch.softmax(torch.from_numpy(x), dim=2).numpy()
    np.testing.assert_allclose(got, want, rtol=4 * ULP, atol=1e-9)


def test_as_float32_takes_tensors_without_importing_for_arrays() -> None:
    tensor = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    out = as_float32(tensor)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.tolist()[1] == [3, 4, 5]


def test_to_tensor_and_normalize_are_bit_for_bit_torchs() -> None:
    img = np.random.default_rng(2).integers(0, 256, (32, 100, 3), dtype=np.uint8)
    got = NormalizeOCR([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(ToTensorOCR()({"img": img}))
    t = torch.from_numpy(img.transpose(2, 0, 1).copy()).float().div(255)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    want = t.sub(mean).div(std).numpy()
    assert got["img"].dtype == np.float32
    assert np.array_equal(got["img"], want)

"""mmdet's ``RandomFlip`` at test time (Mask R-CNN's pipeline): a no-op unless a wrapper flips."""

from __future__ import annotations

import numpy as np

from ocrserve.mmocr.pipelines import build_pipeline


def test_random_flip_follows_the_wrapper() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    flip = build_pipeline([{"type": "RandomFlip"}])
    plain = flip({"img": img.copy()})
    assert np.array_equal(plain["img"], img) and plain["flip"] is False
    assert plain["flip_direction"] is None
    flipped = flip({"img": img.copy(), "flip": True, "flip_direction": "horizontal"})
    assert np.array_equal(flipped["img"], img[:, ::-1])
    both = flip({"img": img.copy(), "flip": True, "flip_direction": "diagonal"})
    assert np.array_equal(both["img"], img[::-1, ::-1])

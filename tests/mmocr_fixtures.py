"""Reading ../shared's MMOCR 0.6.3 detector fixtures: the images, JSON files and a model's
checkpoint with its ``bias_shift`` variant applied. Outside ``tests/parity`` so that importing
it sets no oneDNN caps."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ocrserve.mmocr import load_checkpoint
from tests.prerequisites import SHARED

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
TEXTDET = FIXTURES / "textdet"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def stem(name: str) -> str:
    """``det_640x640.png`` -> ``det_640x640``: the fixture files' prefix for an image."""
    return name.rsplit(".", 1)[0]


@cache
def fixture_image(name: str) -> np.ndarray:
    """A fixture image as BGR, as MMOCR read it."""
    image = cv2.imdecode(np.fromfile(FIXTURES / "images" / name, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def fixture_state(folder: Path, variant: str) -> dict[str, torch.Tensor]:
    """The checkpoint's weights in float32; ``bias_shift``: with ``bias_shift/shift.json``'s
    delta added to its parameter."""
    state = {k: v.float() for k, v in load_checkpoint(folder / "checkpoint.pth").state_dict.items()}
    if variant == "bias_shift":
        shift = read_json(folder / "bias_shift" / "shift.json")
        delta = torch.tensor(shift["delta"], dtype=torch.float32)
        state[shift["param"]] = state[shift["param"]] + delta
    return state

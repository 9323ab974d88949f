"""MMOCR 1.x parameter names -> the MMOCR 0.x names ocrserve's models use.

MMOCR 1.x renamed a few modules; the layers inside kept their names, so a 1.x checkpoint of an
architecture loads once the module prefixes are mapped back. Checked against MMOCR 1.x (``main``):

- text detectors (``SingleStageTextDetector``): the head is ``det_head``, 0.x's ``bbox_head``;
  ``DBHead`` keeps ``binarize.0..6`` and ``threshold.0..6`` (1.x applies the probability sigmoid
  outside ``binarize``; it has no parameters). ``backbone`` (mmdet 3.x ResNet) and ``neck``
  (``FPNC``) keep their names.
- ``CRNN`` (0.x ``CRNNNet``): ``backbone.cnn.*`` (``MiniVGG`` = 0.x ``VeryDeepVgg``) and
  ``decoder.decoder.*`` are unchanged. Note that 1.x's CRNN dictionary puts the CTC blank (its
  padding token) last, where 0.x puts ``<BLK>`` first: the weights load, but decoding a 1.x CRNN
  checkpoint with a 0.x ``CTCConvertor`` config would shift every class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

__all__ = ["MMOCR1_RENAMES", "rename_mmocr1_keys"]

V = TypeVar("V")

#: (1.x prefix, 0.x prefix) pairs, for every architecture.
MMOCR1_RENAMES: tuple[tuple[str, str], ...] = (("det_head.", "bbox_head."),)


def rename_mmocr1_keys(state_dict: Mapping[str, V]) -> dict[str, V]:
    """Map 1.x key prefixes to 0.x ones; a state dict in 0.x names comes back unchanged.

    A prefix is mapped only if no key already uses its 0.x form (a mixed checkpoint is left for
    the key check to report).
    """
    out = dict(state_dict)
    for new, old in MMOCR1_RENAMES:
        if any(k.startswith(old) for k in out) or not any(k.startswith(new) for k in out):
            continue
        out = {(old + k[len(new) :] if k.startswith(new) else k): v for k, v in out.items()}
    return out

"""Tiny MMOCR models as archives, built with `ocrserve archive`'s code (needs torch and onnx).

- ``tiny_det``: a small DBNet (seeded weights, threshold bias raised) that finds text on the demo
  page at ``img_scale`` 128 x 64;
- ``tiny_rec``: a small SAR (ParallelSARDecoder, ``valid_ratio`` masks) with its dictionary in a
  ``dict_file``, so the archive carries one.

Each is archived with ``--runtime torch`` (``NAME.mar``) and ``--runtime onnx`` (``NAME_onnx.mar``).
`legacy_onnx_archive` writes what ``--runtime onnx`` wrote before ONNX archives dropped the
weights: both files, no ``serving`` section.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from tests.unit.mmocr.models.test_sar import sar_config
from tests.unit.mmocr.test_mmocr_predictor import _det_config, _weights
from tests.unit.mmocr.test_onnx_export import PIPELINE

__all__ = ["TINY_MODELS", "legacy_onnx_archive", "tiny_mmocr_archives"]

TINY_MODELS = ("tiny_det", "tiny_rec")
DICTIONARY = "0123456789abcdefghijklmnopqrstuvwxyz"


def _rec_config(dict_file: Path) -> dict[str, Any]:
    model = sar_config()
    model["label_convertor"] = {**model["label_convertor"], "dict_file": str(dict_file)}
    model["label_convertor"].pop("dict_type", None)
    return {"model": model, "data": {"test": {"pipeline": PIPELINE}}}


def tiny_mmocr_archives(folder: Path) -> Path:
    """``folder/store`` holding ``tiny_det[_onnx].mar`` and ``tiny_rec[_onnx].mar``."""
    import torch

    from ocrserve.mmocr.archiver import archive_mmocr

    store = folder / "store"
    dict_file = folder / "tiny_dict.txt"
    dict_file.write_text("\n".join(DICTIONARY) + "\n")
    for name, config in (("tiny_det", _det_config()), ("tiny_rec", _rec_config(dict_file))):
        config_path = folder / f"{name}.py"
        config_path.write_text("".join(f"{key} = {value!r}\n" for key, value in config.items()))
        checkpoint = folder / f"{name}.pth"
        torch.save({"state_dict": _weights(config)}, checkpoint)
        for runtime, suffix in (("torch", ""), ("onnx", "_onnx")):
            archive_mmocr(config_path, checkpoint, store, f"{name}{suffix}", runtime=runtime,
                          force=True, progress=lambda _: None)  # fmt: skip
    return store


def legacy_onnx_archive(store: Path, name: str) -> Path:
    """``NAME_legacy.mar``: ``NAME_onnx.mar`` plus ``NAME.mar``'s weights, as archives were."""
    out = store / f"{name}_legacy.mar"
    with (
        zipfile.ZipFile(store / f"{name}_onnx.mar") as onnx_zip,
        zipfile.ZipFile(store / f"{name}.mar") as torch_zip,
        zipfile.ZipFile(out, "w") as zf,
    ):
        manifest = json.loads(onnx_zip.read("MAR-INF/MANIFEST.json"))
        manifest["model"]["modelName"] = out.stem
        manifest["model"]["serializedFile"] = "weights.safetensors"
        del manifest["ocrserve"]["serving"]
        zf.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest))
        for member in onnx_zip.namelist():
            if member != "MAR-INF/MANIFEST.json":
                zf.writestr(member, onnx_zip.read(member))
        zf.writestr("weights.safetensors", torch_zip.read("weights.safetensors"))
    return out

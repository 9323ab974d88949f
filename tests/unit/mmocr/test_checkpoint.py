"""Tests for ocrserve.mmocr.checkpoint: MMOCR checkpoints loaded without unpickling code."""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ocrserve.errors import CheckpointError  # noqa: E402
from ocrserve.mmocr.checkpoint import (  # noqa: E402
    Checkpoint,
    check_keys,
    load_checkpoint,
    strip_prefix,
)
from tests.prerequisites import SHARED, needs_shared  # noqa: E402

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"


def _weights() -> OrderedDict[str, Any]:
    return OrderedDict(
        [
            ("backbone.conv1.weight", torch.arange(6, dtype=torch.float32).reshape(2, 3)),
            ("backbone.bn1.num_batches_tracked", torch.tensor(7)),
        ]
    )


def _write_marker(path: str) -> None:
    Path(path).write_text("unpickling ran code")


class _Exploit:
    """Unpickling this calls ``_write_marker``: a stand-in for arbitrary code in a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write_marker, (str(self.marker),))


def test_mmcv_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "epoch_5.pth"
    meta = {"mmcv_version": "1.7.2", "time": "Mon", "epoch": 5, "iter": 100, "CLASSES": ("text",)}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.007, "params": [0, 1]}]}
    torch.save({"meta": meta, "state_dict": _weights(), "optimizer": optimizer}, path)
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.meta == meta
    assert list(ckpt.state_dict) == list(_weights())
    for key, value in _weights().items():
        assert torch.equal(ckpt.state_dict[key], value)
    with pytest.raises(AttributeError):
        ckpt.meta = {}  # type: ignore[misc]


def test_bare_state_dict_with_module_prefix(tmp_path: Path) -> None:
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in _weights().items()}, path)
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {}
    assert list(ckpt.state_dict) == list(_weights())


def test_published_legacy_format(tmp_path: Path) -> None:
    # MMOCR 0.x's publish_model.py: meta {'CLASSES': 0}, the pre-1.6 (non-zip) file format.
    path = tmp_path / "published.pth"
    checkpoint = {"meta": {"CLASSES": 0}, "state_dict": _weights()}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"CLASSES": 0} and list(ckpt.state_dict) == list(_weights())


def _rename_in_pickle(path: Path, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    for name in entries:
        if name.endswith("/data.pkl"):
            entries[name] = entries[name].replace(old, new)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("numpy_1_names", [False, True], ids=["numpy2", "numpy1"])
def test_numpy_scalars_in_meta(tmp_path: Path, numpy_1_names: bool) -> None:
    # mmcv's train script stores seed = np.random.randint(2**31); eval hooks store numpy scores.
    path = tmp_path / "seeded.pth"
    meta = {"seed": np.int64(1234), "hook_msgs": {"best_score": np.float64(0.5)}}
    torch.save({"meta": meta, "state_dict": _weights()}, path)
    if numpy_1_names:  # as written by MMOCR 0.6.3's environment (numpy 1.23)
        _rename_in_pickle(path, b"numpy._core.multiarray", b"numpy.core.multiarray")
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"seed": 1234, "hook_msgs": {"best_score": 0.5}}
    assert type(ckpt.meta["seed"]) is int and type(ckpt.meta["hook_msgs"]["best_score"]) is float


def test_refuses_python_objects_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"meta": {"hook": _Exploit(marker)}, "state_dict": _weights()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "contains Python objects that cannot be loaded safely" in message
    assert "weights_only=True refused: Unsupported global" in message and "_write_marker" in message
    assert "re-save it as a plain state dict or safetensors" in message
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really would run code if unpickled
    assert marker.exists()


def test_refuses_numpy_arrays(tmp_path: Path) -> None:
    path = tmp_path / "array.pth"
    torch.save({"meta": {"scores": np.zeros(3)}, "state_dict": _weights()}, path)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(path)


def test_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    weights = {f"module.{k}": v.contiguous() for k, v in _weights().items()}
    save_file(weights, str(path), metadata={"format": "pt", "config": "dbnet.py"})
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"format": "pt", "config": "dbnet.py"}
    assert sorted(ckpt.state_dict) == sorted(_weights())
    for key, value in _weights().items():
        assert torch.equal(ckpt.state_dict[key], value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello world", "is not a readable PyTorch checkpoint"),
        (b"", "is not a readable PyTorch checkpoint"),
        ([torch.zeros(1)], "holds a list, not a checkpoint dict"),
        ({"state_dict": {"a": 1}}, "not a state dict ('a' holds a int, not a tensor)"),
        ({"state_dict": [1]}, "'state_dict' is a list, not a dict"),
        ({"meta": [1], "state_dict": {}}, "'meta' is a list, not a dict"),
    ],
)
def test_unusable_files(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert message in str(info.value)


def test_missing_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.pth")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(broken)


def test_strip_prefix() -> None:
    weights = {"module.a": torch.zeros(1), "b.module.c": torch.ones(1), "model.d": torch.ones(1)}
    assert list(strip_prefix(weights)) == ["a", "b.module.c", "model.d"]
    assert list(strip_prefix(weights, prefix="model.")) == ["module.a", "b.module.c", "d"]


def test_check_keys() -> None:
    check_keys(["a", "b"], iter(["b", "a"]))
    with pytest.raises(CheckpointError) as info:
        check_keys(["a", "c", "b"], ["b", "z"])
    assert str(info.value) == (
        "checkpoint does not match the model: 2 missing keys: a, c; 1 unexpected key: z"
    )


def test_check_keys_truncates_long_lists() -> None:
    model = [f"layer.{i:02d}" for i in range(30)]
    with pytest.raises(CheckpointError) as info:
        check_keys(model, [])
    message = str(info.value)
    assert message.startswith("checkpoint does not match the model: 30 missing keys: layer.00, ")
    assert "layer.19, ... and 10 more" in message and "layer.20" not in message


@needs_shared("fixtures/mmocr-0.6.3")
def test_shared_fixture_checkpoints_load() -> None:
    paths = sorted(FIXTURES.glob("*/*/checkpoint.pth"))
    assert paths, f"no checkpoint.pth under {FIXTURES}"
    for path in paths:
        ckpt = load_checkpoint(path)
        assert ckpt.state_dict, path
        assert all(isinstance(v, torch.Tensor) for v in ckpt.state_dict.values())
        assert not any(key.startswith("module.") for key in ckpt.state_dict)
        assert ckpt.meta.get("mmcv_version") == "1.7.2", path

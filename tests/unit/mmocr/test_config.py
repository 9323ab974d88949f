"""Tests for ocrserve.mmocr.config: MMOCR configs read as data, never executed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocrserve.errors import ConfigError
from ocrserve.mmocr.config import load_config

DATA = Path(__file__).resolve().parents[2] / "data" / "mmlab"
V0_DET = DATA / "v0" / "det" / "det_child.py"
V0_REC = DATA / "v0" / "rec" / "rec_child.py"
V1_CRNN = DATA / "v1" / "crnn_toy.py"


def _without_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_delete(v) for k, v in value.items() if k != "_delete_"}
    if isinstance(value, list):
        return [_without_delete(v) for v in value]
    return value


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("config", [V0_DET, V0_REC, V1_CRNN], ids=lambda p: p.stem)
def test_matches_what_mmengine_built(config: Path) -> None:
    expected = json.loads((DATA / "expected" / f"{config.stem}.json").read_text())
    assert load_config(config) == _without_delete(expected)


@pytest.mark.parametrize("config", [V0_DET, V0_REC, V1_CRNN], ids=lambda p: p.stem)
def test_result_round_trips_through_json(config: Path) -> None:
    cfg = load_config(config)
    assert json.loads(json.dumps(cfg)) == cfg


def test_base_list_nested_override_and_delete() -> None:
    cfg = load_config(V0_DET)
    backbone = cfg["model"]["backbone"]
    assert backbone["depth"] == 50 and backbone["style"] == "caffe"  # merged, not replaced
    assert backbone["norm_cfg"] == {"type": "BN", "requires_grad": False}
    assert backbone["out_indices"] == [0, 1, 2, 3]  # tuples become lists
    assert cfg["model"]["neck"] == {"type": "FPNF", "in_channels": [256, 512]}  # _delete_
    assert cfg["model"]["bbox_head"]["loss"] == {
        "type": "DBLoss",
        "alpha": 1.0,
        "beta": 10.0,
        "bbce_loss": True,
    }
    assert cfg["log_config"] == {"interval": 5, "hooks": [{"type": "TensorboardLoggerHook"}]}
    assert cfg["new_block"] == {"value": 1}
    assert "_base_" not in cfg and "_deprecation_" not in cfg
    assert not any(key.startswith("__") for key in cfg)


def test_base_references_variables_and_arithmetic() -> None:
    cfg = load_config(V0_DET)
    assert cfg["data"]["test"]["pipeline"] == cfg["test_pipeline_1333_736"]
    normalize = cfg["data"]["train"]["pipeline"][2]
    assert normalize == {
        "type": "Normalize",
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "to_rgb": True,
    }
    assert cfg["data"]["train"]["pipeline"][1]["brightness"] == 32.0 / 255
    assert cfg["total_epochs"] == 1200 // 2 - 100 % 7
    assert cfg["lr"] == 0.007 * 2**-1
    assert cfg["data"]["samples_per_gpu"] == 16
    first, second = cfg["data"]["test"]["datasets"]
    assert first["ann_file"] == "data/toy/instances_test.json"
    assert second["ann_file"] == "data/toy/instances_val.json"  # a copy, edited by key
    assert first["img_prefix"] == second["img_prefix"] == "data/toy/imgs"


def test_string_base_comprehension_and_slice() -> None:
    cfg = load_config(V0_REC)
    assert cfg["log_level"] == "INFO" and cfg["checkpoint_config"] == {"interval": 1}
    assert cfg["mean_255"] == [127.5, 127.5, 127.5]
    assert cfg["data"]["val"]["pipeline"] == cfg["test_pipeline"][1:3]
    assert cfg["model"]["label_convertor"]["dict_type"] == "DICT36"


def test_mmengine_style_base_access_and_updates() -> None:
    cfg = load_config(V1_CRNN)
    assert cfg["toy_rec_test"]["pipeline"] == cfg["test_pipeline"]
    assert cfg["val_dataloader"]["dataset"]["datasets"][0]["test_mode"] is True
    decoder = cfg["model"]["decoder"]
    assert decoder["postprocessor"] == {"type": "CTCPostProcessor", "ignore_chars": ["padding"]}
    assert decoder["rnn_flag"] is False and decoder["dictionary"]["type"] == "Dictionary"
    assert cfg["model"]["backbone"] == {"type": "MiniVGG", "leaky_relu": False, "input_channels": 3}
    assert cfg["train_cfg"]["max_epochs"] == 200
    assert cfg["default_hooks"]["logger"] == {"type": "LoggerHook", "interval": 50}
    assert (
        cfg["train_dataloader"]["batch_size"] == 32 and cfg["train_dataloader"]["num_workers"] == 8
    )
    assert cfg["work_dir"] == "./work_dirs/crnn_toy"


def test_json_config(tmp_path: Path) -> None:
    cfg = load_config(V0_DET)
    path = _write(tmp_path, "flat.json", json.dumps(cfg))
    assert load_config(path) == cfg
    with pytest.raises(ConfigError, match="without _base_"):
        load_config(_write(tmp_path, "child.json", '{"_base_": "flat.json"}'))


REJECTED = [
    ("import os\n", "import 'import os' is not allowed"),
    ("from os import path\n", "import 'from os import path' is not allowed"),
    (
        "x = os.system('ls')\n",
        "function call 'os.system(...)' is not allowed in a config (only dict(...))",
    ),
    ("x = __import__('os')\n", "function call '__import__(...)' is not allowed"),
    ("x = f'{print(1)}'\n", "function call 'print(...)' is not allowed"),
    ("x = [i for i in range(3)]\n", "function call 'range(...)' is not allowed"),
    ("f = lambda: 1\n", "lambda 'lambda: 1' is not allowed"),
    ("x = 'abc'.upper\n", "attribute \"'abc'.upper\" is not a _base_ value"),
    ("x = dict(a=1).__class__\n", "attribute 'dict(a=1).__class__' is not a _base_ value"),
    ("x = [i for i in [1, 2] if i]\n", "is too complex for a config"),
    ("x = {i for i in [1, 2]}\n", "set comprehension"),
    ("x = 1 if True else 2\n", "conditional expression"),
    ("def f():\n    pass\n", "statement 'def f():"),
    ("for i in []:\n    pass\n", "statement 'for i in []:"),
    ("x = y\n", "name 'y' is not defined"),
    ("x = _base_.model\n", "_base_ is used but this config has no _base_"),
    ("x = {1: 2}\n", "dict key 1 is not a string"),
    ("x = dict(a=1, **dict(a=2))\n", "got keyword 'a' twice"),
    ("x = 1 / 0\n", "ZeroDivisionError"),
    ("x = 2 ** 10 ** 10\n", "is too large"),
    ("x = [0] * 10 ** 9\n", "unsupported operation list * int"),
    ("x = dict(a=1)\ny = x['b']\n", "no key 'b'"),
    ("x = dict()\nx['self'] = x\n", "contains itself"),
    ("x = (-8) ** 0.5\n", "is not a real number"),
]


@pytest.mark.parametrize(("source", "message"), REJECTED, ids=[s for s, _ in REJECTED])
def test_rejects_constructs_naming_file_and_line(tmp_path: Path, source: str, message: str) -> None:
    path = _write(tmp_path, "bad.py", "a = 1  # first line is fine\n" + source)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert message in text
    if "contains itself" not in message:  # found after evaluation, so no line
        assert text.startswith(f"{path}:2: ") or text.startswith(f"{path}:3: ")


def test_never_executes_a_config(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    source = f"x = open({str(marker)!r}, 'w')\ny = __import__('os').system('touch {marker}')\n"
    with pytest.raises(ConfigError, match="bad.py:1: function call 'open"):
        load_config(_write(tmp_path, "bad.py", source))
    assert not marker.exists()


def test_error_in_a_base_names_the_base(tmp_path: Path) -> None:
    _write(tmp_path, "base/model.py", "model = dict(type='X')\nhook = eval('1')\n")
    child = _write(tmp_path, "child.py", "_base_ = ['base/model.py']\n")
    with pytest.raises(ConfigError, match=r"base/model\.py:2: function call 'eval\(\.\.\.\)'"):
        load_config(child)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.py": "_base_ = 'b.py'\n", "b.py": "_base_ = 'a.py'\n"}, "inheritance loops"),
        ({"a.py": "_base_ = 'missing.py'\n"}, "base config 'missing.py' not found"),
        ({"a.py": "_base_ = ['mmdet::models/x.py']\n"}, "is in another package"),
        (
            {"a.py": "_base_ = ['b.py', 'c.py']\n", "b.py": "x = 1\n", "c.py": "x = 2\n"},
            "same keys: x",
        ),
        ({"a.py": "_base_ = 'b.py'\nx = dict(a=1)\n", "b.py": "x = 1\n"}, "x is a int in the base"),
        ({"a.py": "_base_ = 'b.py'\n_base_ = 'b.py'\n", "b.py": ""}, "assigned more than once"),
        ({"a.py": "_base_ = [1]\n"}, "_base_ must be a path or a list of paths"),
        ({"a.py": "x = {{_base_.y.0}}\n"}, "unsupported base reference"),
        ({"a.py": "x = (\n"}, "a.py:1: syntax error"),
        ({"a.yaml": "x: 1\n"}, "unsupported config type '.yaml'"),
    ],
)
def test_inheritance_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / next(iter(files)))
    assert message in str(info.value)


def test_base_values_are_reached_through_base_only(tmp_path: Path) -> None:
    _write(tmp_path, "b.py", "model = dict(type='X')\n")
    child = _write(tmp_path, "a.py", "_base_ = 'b.py'\nm = model\n")
    with pytest.raises(ConfigError, match=r"name 'model' is not defined \(a base config's value"):
        load_config(child)


def test_tuple_unpacking(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.py", "max_scale, min_scale = (1024, 512)\n")
    assert load_config(path) == {"max_scale": 1024, "min_scale": 512}


def test_data_blowup_is_bounded(tmp_path: Path) -> None:
    source = "x = [0] * 1000\ny = [x] * 1000\nz = [y] * 1000\n"
    with pytest.raises(ConfigError, match="too large"):
        load_config(_write(tmp_path, "big.py", source))


@pytest.mark.skipif(
    not os.environ.get("OCRSERVE_MMOCR_CONFIGS"),
    reason="set OCRSERVE_MMOCR_CONFIGS to an MMOCR 0.x configs/ folder to load its model zoo",
)
def test_real_mmocr_configs_load() -> None:
    root = Path(os.environ["OCRSERVE_MMOCR_CONFIGS"])
    configs = sorted(p for task in ("textdet", "textrecog") for p in (root / task).rglob("*.py"))
    assert configs, f"no textdet/textrecog configs under {root}"
    failures = []
    for config in configs:
        try:
            cfg = load_config(config)
            assert json.loads(json.dumps(cfg)) == cfg
        except ConfigError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)

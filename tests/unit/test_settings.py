from __future__ import annotations

from pathlib import Path

import pytest

from ocrserve.errors import ConfigError
from ocrserve.settings import InputLimits, Settings, parse_address, read_properties


def test_defaults_are_torchserve_defaults_on_loopback() -> None:
    s = Settings()
    assert s.inference_address == "http://127.0.0.1:8080"
    assert s.management_address == "http://127.0.0.1:8081"
    assert s.metrics_address == "http://127.0.0.1:8082"
    assert s.max_request_size == 6553500
    assert s.default_response_timeout == 120


def test_read_properties(tmp_path: Path) -> None:
    f = tmp_path / "config.properties"
    f.write_text(
        "# comment\n! also comment\n\ninference_address=http://0.0.0.0:9080\n"
        "job_queue_size : 5\nload_models=a,\\\n    b\n"
    )
    assert read_properties(f) == {
        "inference_address": "http://0.0.0.0:9080",
        "job_queue_size": "5",
        "load_models": "a,b",
    }


def test_precedence_env_over_cli_over_file(tmp_path: Path) -> None:
    # TorchServe's documented order: environment > command line > config file.
    f = tmp_path / "config.properties"
    f.write_text("job_queue_size=5\nbatch_size=3\nmax_batch_delay=7\nenable_envvars_config=true\n")
    env = {"TS_BATCH_SIZE": "4", "TS_MAX_BATCH_DELAY": "9"}
    s = Settings.load({"max_batch_delay": 11, "default_workers_per_model": 2}, f, env)
    assert (s.job_queue_size, s.batch_size, s.max_batch_delay) == (5, 4, 9)
    assert s.default_workers_per_model == 2


def test_env_ignored_unless_enabled(tmp_path: Path) -> None:
    s = Settings.load({}, None, {"TS_BATCH_SIZE": "4"})
    assert s.batch_size == 1


def test_unknown_key_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "config.properties"
    f.write_text("no_such_key=1\n")
    Settings.load({}, f)
    assert "no_such_key" in caplog.text


@pytest.mark.parametrize(
    "text,needle",
    [
        ("job_queue_size=lots", "job_queue_size='lots'"),
        ("batch_size=0", "batch_size=0"),
        ("enable_envvars_config=maybe", "enable_envvars_config"),
        ("inference_address=https://127.0.0.1:1", "inference_address"),
        ("number_of_gpu=-2", "number_of_gpu=-2"),
        ('models={"m": {"1.0": {"deviceType": "tpu"}}}', "deviceType='tpu'"),
        ("max_pdf_pages=0", "max_pdf_pages=0"),
        ("max_pdf_pixels=0", "max_pdf_pixels=0"),
        ("pdf_dpi=-72", "pdf_dpi=-72"),
        ("pdf_render_timeout=0", "pdf_render_timeout=0.0"),
    ],
)
def test_bad_value_names_key_and_value(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "config.properties"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError, match=needle.replace("'", ".").replace("=", ".")):
        Settings.load({}, f)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load({}, "/nonexistent/config.properties")


def test_parse_address() -> None:
    assert parse_address("k", "http://127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("k", "127.0.0.1:9") == ("127.0.0.1", 9)
    with pytest.raises(ConfigError, match="expected http://HOST:PORT"):
        parse_address("k", "http://127.0.0.1")


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().batch_size = 2  # type: ignore[misc]


def test_input_limits_carry_the_decoding_settings(tmp_path: Path) -> None:
    f = tmp_path / "config.properties"
    f.write_text(
        "max_image_pixels=1000\nmax_pdf_pages=3\nmax_pdf_pixels=2000\npdf_dpi=72\n"
        "pdf_render_timeout=2.5\npdf_allow_javascript=true\n"
    )
    limits = Settings.load({}, f).input_limits()
    assert limits == InputLimits(
        1000, max_pages=3, max_total_pixels=2000, dpi=72, render_timeout=2.5,
        allow_javascript=True,
    )  # fmt: skip
    assert Settings().input_limits().allow_javascript is False


def test_from_properties_takes_yaml_values() -> None:
    """The ``args`` of a Ray Serve config (`ocrserve.server.ray_app`): config.properties keys
    with YAML's types."""
    models = {"rec": {"1.0": {"minWorkers": 2}}}
    settings = Settings.from_properties(
        {"model_store": "/store", "load_models": ["a.mar", "b.mar"], "ray_replica_cpus": 1,
         "disable_token_authorization": True, "models": models, "batch_size": "4"},
        environ={},
    )  # fmt: skip
    assert settings.load_models == ("a.mar", "b.mar") and settings.model_store == "/store"
    assert settings.ray_replica_cpus == 1.0 and settings.batch_size == 4
    assert settings.disable_token_authorization is True
    assert settings.model_settings() == models
    with pytest.raises(ConfigError, match="'bogus_key': not a setting"):
        Settings.from_properties({"bogus_key": 1}, environ={})
    with pytest.raises(ConfigError, match="batch_size"):
        Settings.from_properties({"batch_size": "many"}, environ={})

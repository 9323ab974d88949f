"""The one frozen settings object, read from config.properties, ``TS_*`` variables and the CLI.

Keys and defaults are TorchServe's (``config.properties``), so an existing file works
unchanged. Precedence follows TorchServe: environment (only when
``enable_envvars_config=true``) > command line > config file > default. The CLI options of
``ocrserve start`` are generated from the fields below, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ocrserve.errors import ConfigError

__all__ = ["InputLimits", "Settings", "parse_address", "read_properties", "runtime_dir"]

log = logging.getLogger(__name__)


def _opt(help: str, *, cli: bool = True, key: bool = True) -> dict[str, Any]:
    return {"help": help, "cli": cli, "key": key}


@dataclass(frozen=True)
class InputLimits:
    """The caps a worker applies to what it decodes (`Settings.input_limits`); kept here, not
    in `ocrserve.imaging`, so that a worker receives it without importing numpy first."""

    max_pixels: int = 40_000_000
    max_pages: int = 50
    max_total_pixels: int = 200_000_000
    dpi: int = 150
    render_timeout: float = 60.0
    allow_javascript: bool = False


@dataclass(frozen=True)
class Settings:
    """Every option of the server. Field names are TorchServe's config.properties keys."""

    inference_address: str = field(
        default="http://127.0.0.1:8080",
        metadata=_opt("Inference API address (TorchServe key inference_address)."),
    )
    management_address: str = field(
        default="http://127.0.0.1:8081",
        metadata=_opt("Management API address (management_address)."),
    )
    metrics_address: str = field(
        default="http://127.0.0.1:8082",
        metadata=_opt("Metrics API address (metrics_address)."),
    )
    model_store: str | None = field(
        default=None, metadata=_opt("Folder holding model archives (model_store).")
    )
    load_models: tuple[str, ...] = field(
        default=(),
        metadata=_opt(
            "Models to load at start: 'all', NAME, NAME=FILE or FILE (load_models). "
            "Empty: the bundled default models (ppocr_det, ppocr_rec, ocr)."
        ),
    )
    default_workers_per_model: int = field(
        default=1, metadata=_opt("Worker processes started per model.")
    )
    max_workers_per_model: int = field(
        default=16,
        metadata=_opt(
            "Most worker processes one model version may run (a guard on scale and register)."
        ),
    )
    threads_per_worker: int = field(
        default=0,
        metadata=_opt(
            "CPU threads per worker; 0: every core (idle threads sleep, so busy workers share "
            "the cores)."
        ),
    )
    number_of_gpu: int = field(
        default=-1,
        metadata=_opt(
            "GPUs the workers are spread over, round robin (number_of_gpu); -1: every GPU the "
            "machine shows (CUDA_VISIBLE_DEVICES, else the NVIDIA driver's list); 0: CPU only. "
            "Only PyTorch models use them; ONNX Runtime models stay on the CPU."
        ),
    )
    job_queue_size: int = field(
        default=100, metadata=_opt("Requests waiting per model before 503 (job_queue_size).")
    )
    batch_size: int = field(
        default=1, metadata=_opt("Largest batch a worker receives (batch_size).")
    )
    max_batch_delay: int = field(
        default=100, metadata=_opt("Milliseconds to wait for a batch to fill (max_batch_delay).")
    )
    default_response_timeout: int = field(
        default=120, metadata=_opt("Seconds a worker may take for one batch before it is replaced.")
    )
    default_startup_timeout: int = field(
        default=120, metadata=_opt("Seconds a worker may take to load its model.")
    )
    worker_memory_limit: int = field(
        default=0,
        metadata=_opt(
            "Megabytes of resident memory a worker may hold after a batch; a worker over it is "
            "replaced between requests, none failing (0: no limit)."
        ),
    )
    max_request_size: int = field(
        default=6553500, metadata=_opt("Largest request body in bytes (max_request_size).")
    )
    max_response_size: int = field(
        default=6553500, metadata=_opt("Largest response body in bytes (max_response_size).")
    )
    max_image_pixels: int = field(
        default=40_000_000,
        metadata=_opt(
            "Largest decoded image (width x height); guards against decompression bombs."
        ),
    )
    max_pdf_pages: int = field(
        default=50,
        metadata=_opt(
            "Most pages of a PDF or multi-page TIFF (counted before anything is rendered)."
        ),
    )
    max_pdf_pixels: int = field(
        default=200_000_000,
        metadata=_opt(
            "Most pixels of all the pages of one PDF or multi-page TIFF together (3 bytes each "
            "in the worker: 600 MB by default), checked before rendering."
        ),
    )
    pdf_dpi: int = field(
        default=150,
        metadata=_opt(
            "Resolution PDF pages are rendered at (dots per inch); each page must stay within "
            "max_image_pixels at it, checked from its size in points before rendering."
        ),
    )
    pdf_render_timeout: float = field(
        default=60.0,
        metadata=_opt("Seconds one page of a PDF may take to render."),
    )
    pdf_allow_javascript: bool = field(
        default=False,
        metadata=_opt(
            "Accept PDFs that carry JavaScript (document scripts, /JS actions); off: refused "
            "with 400 before rendering. Either way no script is ever run."
        ),
    )
    log_location: str = field(
        default="logs", metadata=_opt("Folder for the server log of a background start.")
    )
    pid_file: str = field(
        default="",
        metadata=_opt(
            "Pid file of the server (ocrserve stop and ocrserve key find the server by it); "
            "empty: ocrserve-HOST-PORT.pid for the inference address, in $XDG_RUNTIME_DIR or "
            "the temp folder, so servers on other ports never share one."
        ),
    )
    key_file: str = field(
        default="",
        metadata=_opt(
            "File the server writes its keys to (mode 0600); empty: key_file.json in its "
            "working directory, as TorchServe. Keys can be supplied in OCRSERVE_INFERENCE_KEY, "
            "OCRSERVE_MANAGEMENT_KEY and OCRSERVE_API_KEY."
        ),
    )
    enable_envvars_config: bool = field(
        default=False,
        metadata=_opt("Read TS_<KEY> environment variables (enable_envvars_config)."),
    )
    models: str = field(
        default="",
        metadata=_opt(
            'Per-model settings as JSON: {"name": {"1.0": {"minWorkers": 1, "batchSize": 4, '
            '"maxBatchDelay": 50, "responseTimeout": 120, ...}}} (TorchServe\'s models key).'
        ),
    )
    enable_model_api: bool = field(
        default=False,
        metadata=_opt("Allow registering and unregistering models over the management API."),
    )
    allowed_urls: tuple[str, ...] = field(
        default=(),
        metadata=_opt(
            "Regular expressions a registration URL must match in full (allowed_urls). "
            "Empty: only archives in the model store."
        ),
    )
    disable_token_authorization: bool = field(
        default=False,
        metadata=_opt("Turn off bearer-token authorization (on by default, as TorchServe 0.11+)."),
    )
    token_expiration_min: float = field(
        default=60.0, metadata=_opt("Minutes an inference or management key stays valid.")
    )
    metrics_mode: str = field(
        default="prometheus",
        metadata=_opt("prometheus (default) or log: log serves an empty /metrics, as TorchServe."),
    )
    number_of_netty_threads: int = field(
        default=0,
        metadata=_opt(
            "Accepted for compatibility: each API runs on one asyncio event loop, which never "
            "blocks (inference runs in worker processes), so there is no I/O thread pool to size."
        ),
    )
    enable_web_page: bool = field(
        default=True,
        metadata=_opt(
            "Serve the page to try the served models at GET / of the inference port (it asks "
            "for the inference key like any client)."
        ),
    )
    engine: str = field(
        default="local",
        metadata=_opt(
            "What runs the models: local (worker processes of this server) or ray (Ray Serve "
            "replicas, one deployment per model version; needs the ocrserve[ray] extra)."
        ),
    )
    ray_address: str = field(
        default="",
        metadata=_opt(
            "With engine=ray, the cluster to join: auto, HOST:PORT of its GCS, or "
            "ray://HOST:PORT (Ray Client); empty: $RAY_ADDRESS, else a one-machine cluster."
        ),
    )
    ray_replica_cpus: float = field(
        default=1.0,
        metadata=_opt("With engine=ray, the CPUs each replica reserves (Ray's num_cpus)."),
    )
    ray_max_replicas_per_node: int = field(
        default=0,
        metadata=_opt(
            "With engine=ray, at most this many replicas of a model version on one node "
            "(Ray Serve's max_replicas_per_node); 0: no cap, Ray spreads them as it can."
        ),
    )
    ray_replica_grpc: bool = field(
        default=True,
        metadata=_opt(
            "With engine=ray, call replicas over Ray Serve's gRPC channel (each replica listens "
            "on a free port of its node; 1.9-5 ms less a request); false: as Ray actor tasks, "
            "through Ray's worker ports only. Never through Ray Client (ray://)."
        ),
    )
    cors_allowed_origin: str = field(
        default="", metadata=_opt("Access-Control-Allow-Origin value; empty: no CORS headers.")
    )
    cors_allowed_methods: str = field(
        default="", metadata=_opt("Access-Control-Allow-Methods value (with an origin set).")
    )
    cors_allowed_headers: str = field(
        default="", metadata=_opt("Access-Control-Allow-Headers value (with an origin set).")
    )

    def __post_init__(self) -> None:
        for name in ("inference_address", "management_address", "metrics_address"):
            parse_address(name, getattr(self, name))
        positive = (
            "default_workers_per_model",
            "max_workers_per_model",
            "job_queue_size",
            "batch_size",
            "default_response_timeout",
            "default_startup_timeout",
            "max_request_size",
            "max_response_size",
            "max_image_pixels",
            "max_pdf_pages",
            "max_pdf_pixels",
            "pdf_dpi",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be a positive integer")
        for name in (
            "max_batch_delay", "threads_per_worker", "number_of_netty_threads",
            "ray_max_replicas_per_node",
        ):  # fmt: skip
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be >= 0")
        if self.number_of_gpu < -1:
            raise ConfigError(f"number_of_gpu={self.number_of_gpu!r}: must be >= -1")
        if self.worker_memory_limit < 0:
            raise ConfigError(
                f"worker_memory_limit={self.worker_memory_limit!r}: must be >= 0 (0: no limit)"
            )
        if not self.pdf_render_timeout > 0:
            raise ConfigError(f"pdf_render_timeout={self.pdf_render_timeout!r}: must be > 0")
        if self.token_expiration_min <= 0:
            raise ConfigError(f"token_expiration_min={self.token_expiration_min!r}: must be > 0")
        if self.engine not in ("local", "ray"):
            raise ConfigError(f"engine={self.engine!r}: expected local or ray")
        if self.ray_replica_cpus < 0:
            raise ConfigError(f"ray_replica_cpus={self.ray_replica_cpus!r}: must be >= 0")
        if self.metrics_mode not in ("prometheus", "log"):
            raise ConfigError(f"metrics_mode={self.metrics_mode!r}: expected prometheus or log")
        for pattern in self.allowed_urls:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"allowed_urls={pattern!r}: not a regular expression ({exc})"
                ) from None
        self.model_settings()  # validates the models JSON

    def input_limits(self) -> InputLimits:
        """The decoding caps workers apply (images, PDF and TIFF pages)."""
        return InputLimits(
            self.max_image_pixels,
            self.max_pdf_pages,
            self.max_pdf_pixels,
            self.pdf_dpi,
            self.pdf_render_timeout,
            self.pdf_allow_javascript,
        )

    def pid_path(self) -> Path:
        """``pid_file``, or ``ocrserve-HOST-PORT.pid`` (the inference address) in the runtime
        folder: one pid file per server, so a second one elsewhere is neither refused nor
        stopped by mistake."""
        if self.pid_file:
            return Path(self.pid_file)
        host, port = parse_address("inference_address", self.inference_address)
        return runtime_dir() / f"ocrserve-{host.replace(':', '_')}-{port}.pid"

    def key_path(self, cwd: Path | None = None) -> Path:
        """Where a server started in ``cwd`` (default: the current folder) writes its keys."""
        base = Path.cwd() if cwd is None else cwd
        return base / (self.key_file or "key_file.json")

    def model_settings(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The ``models`` JSON: name -> version -> TorchServe's per-model keys."""
        if not self.models.strip():
            return {}
        try:
            doc = json.loads(self.models)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"models={self.models!r}: not valid JSON ({exc})") from exc
        known = {
            "minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout",
            "startupTimeout", "marName", "defaultVersion", "deviceType", "parallelType",
        }  # fmt: skip
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise ConfigError(f"models={self.models!r}: expected {{name: {{version: {{...}}}}}}")
        for name, versions in doc.items():
            for version, opts in versions.items():
                if not isinstance(opts, dict):
                    raise ConfigError(f"models: {name} {version}: expected an object")
                for key, value in opts.items():
                    if key not in known:
                        log.warning("models: %s %s: unknown key %r ignored", name, version, key)
                    elif key in ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay",
                                 "responseTimeout", "startupTimeout") and (
                        not isinstance(value, int) or isinstance(value, bool) or value < 0
                    ):  # fmt: skip
                        raise ConfigError(f"models: {name} {version}: {key}={value!r}")
                    elif key == "deviceType" and value not in ("cpu", "gpu"):
                        raise ConfigError(
                            f"models: {name} {version}: deviceType={value!r}: expected cpu or gpu"
                        )
        return doc

    # -- construction --------------------------------------------------------------------

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)

    @classmethod
    def from_properties(
        cls, props: Mapping[str, object], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from config.properties keys given as a mapping (the ``args`` of a Ray
        Serve config, `ocrserve.server.ray_app`): strings as a config.properties file holds
        them, or YAML's numbers, booleans, lists and, for ``models``, a mapping. Keys rank
        as the command line's; an unknown key is an error, not a warning."""
        known = {f.name for f in cls.fields()}
        values: dict[str, Any] = {}
        for key, value in props.items():
            if key not in known:
                raise ConfigError(f"{key!r}: not a setting (config.properties keys only)")
            if isinstance(value, bool):
                raw = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                raw = ",".join(str(v) for v in value)
            elif isinstance(value, dict):
                raw = json.dumps(value)
            else:
                raw = str(value)
            values[key] = _convert(key, raw)
        return cls.load(values, None, environ)

    @classmethod
    def load(
        cls,
        cli: Mapping[str, Any] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings with TorchServe's precedence: environment (``TS_*``, when enabled) >
        command line > config file > default."""
        values: dict[str, Any] = {}
        if config_file is not None:
            props = read_properties(config_file)
            known = {f.name for f in cls.fields()}
            for key, raw in props.items():
                if key not in known:
                    log.warning("config.properties: unknown key %r ignored", key)
                    continue
                values[key] = _convert(key, raw)
        env = os.environ if environ is None else environ
        enabled = values.get("enable_envvars_config", False)
        if cli and cli.get("enable_envvars_config") is not None:
            enabled = bool(cli["enable_envvars_config"])
        for key, value in (cli or {}).items():
            if value is not None:
                values[key] = value
        if enabled:  # TorchServe: environment > command line > file
            for f in cls.fields():
                env_value = env.get("TS_" + f.name.upper())
                if env_value is not None:
                    values[f.name] = _convert(f.name, env_value)
        return cls(**values)


def _field_type(name: str) -> str:
    for f in Settings.fields():
        if f.name == name:
            return str(f.type)
    raise KeyError(name)


def _convert(key: str, raw: str) -> Any:
    """Convert a config.properties or environment string to the field's type."""
    kind = _field_type(key)
    value = raw.strip()
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if kind.startswith("tuple"):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if kind.startswith("str"):
            return value
    except ValueError:
        pass
    else:
        raise ConfigError(f"{key}: unsupported type {kind}")
    raise ConfigError(f"{key}={raw!r}: expected {kind.split(' ')[0]}")


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR`` (per user, private) when set, else the temp folder."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg)
    return Path(tempfile.gettempdir())


def parse_address(key: str, address: str) -> tuple[str, int]:
    """Split TorchServe's ``http://host:port`` address; raise naming the key when malformed."""
    parts = urlsplit(address if "://" in address else "http://" + address)
    if parts.scheme != "http":
        raise ConfigError(f"{key}={address!r}: only http:// addresses are supported (no TLS yet)")
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    if not host or port is None:
        raise ConfigError(f"{key}={address!r}: expected http://HOST:PORT")
    return host, port


def read_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a Java-style ``key=value`` properties file (comments, continuations, ``:`` too)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    out: dict[str, str] = {}
    pending = ""
    for raw_line in text.splitlines():
        line = raw_line.strip() if not pending else raw_line.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            out[line.strip()] = ""
            continue
        out[line[:sep].strip()] = line[sep + 1 :].strip()
    return out


@dataclass(frozen=True)
class ModelConfig:
    """Per-model-version serving settings (TorchServe's describe fields)."""

    min_workers: int = 1
    max_workers: int = 1
    batch_size: int = 1
    max_batch_delay: int = 100
    response_timeout: int = 120
    startup_timeout: int = 120
    loaded_at_startup: bool = False
    #: "cpu", "gpu", or "" for the server's choice (a GPU when `number_of_gpu` gives any).
    device_type: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ModelConfig:
        base = cls(
            min_workers=settings.default_workers_per_model,
            max_workers=settings.default_workers_per_model,
            batch_size=settings.batch_size,
            max_batch_delay=settings.max_batch_delay,
            response_timeout=settings.default_response_timeout,
            startup_timeout=settings.default_startup_timeout,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

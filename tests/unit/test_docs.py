"""The README and docs/: the README stays short and points at every page, links resolve, and the
MkDocs site builds with ``--strict``."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_LIMIT = 12_000

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\S\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def markdown_files() -> list[Path]:
    return [README, REPO / "SECURITY.md", *doc_pages()]


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def local_links(path: Path) -> list[str]:
    """Targets of the inline links and images in ``path`` that are not URLs."""
    targets = _LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not _SCHEME.match(t)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (and the site's: mkdocs.yml uses the same slugify)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of the headings of a Markdown file; repeated ones get -1, -2, ..."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(f"{base}-{n}" if n else base)
    return found


def test_readme_is_short() -> None:
    size = len(README.read_text(encoding="utf-8"))
    assert size < README_LIMIT, (
        f"README.md has {size} characters (limit {README_LIMIT}): move reference material to docs/"
    )


def test_readme_links_every_docs_page() -> None:
    pages = doc_pages()
    assert pages, "docs/ has no pages"
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in local_links(README)
        if target.partition("#")[0]
    }
    missing = [str(p.relative_to(REPO)) for p in pages if p.resolve() not in linked]
    assert not missing, f"README.md does not link to: {', '.join(missing)}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_local_links_resolve(path: Path) -> None:
    broken = []
    for target in local_links(path):
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{path.relative_to(REPO)}: broken links: {', '.join(broken)}"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[test]' brings it)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    command += ["--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


#: A pip install of an extra list that holds ``torch`` (``'.[test,torch]'``, ``ocrserve[torch]``).
_TORCH_INSTALL = re.compile(r"pip install\b.*\[[^\]]*\btorch\b[^\]]*\]")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_torch_install_says_how_to_get_the_cpu_build(path: Path) -> None:
    """pip's default torch wheel is the CUDA build (gigabytes of nvidia-* wheels): next to
    every install of the torch extra, within two lines, PyTorch's CPU index."""
    lines = path.read_text(encoding="utf-8").splitlines()
    missing = [
        f"line {n + 1}"
        for n, line in enumerate(lines)
        if _TORCH_INSTALL.search(line) and CPU_INDEX not in "\n".join(lines[max(0, n - 2) : n + 3])
    ]
    assert not missing, f"{path.relative_to(REPO)}: no {CPU_INDEX} near {', '.join(missing)}"


def _help_default(text: str) -> str:
    """What a help text says after ``Default:``, to the end of its sentence."""
    found = re.search(r"Default: (.+?)\.(?:\s|$)", " ".join(text.split()))
    return found.group(1) if found else ""


def _same(documented: str, default: str) -> bool:
    try:
        return float(documented) == float(default)
    except ValueError:
        return documented == default


def test_compare_options_table_says_what_the_parser_does() -> None:
    """docs/compare.md's table of options: each flag's default is the one ``ocrserve compare
    --help`` gives."""
    from ocrserve.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    flags = sub.choices["compare"]._option_string_actions  # type: ignore[union-attr]
    table = (DOCS / "compare.md").read_text(encoding="utf-8").split("## Options", 1)[1]
    rows = re.findall(r"^\| `(--[\w-]+)[^`]*` \| (.+?) \| ", table, re.M)
    assert len(rows) >= 10, rows
    wrong = [
        f"{flag}: docs {documented!r}, --help {_help_default(flags[flag].help or '')!r}"
        for flag, documented in rows
        if not _same(documented.replace("`", ""), _help_default(flags[flag].help or ""))
    ]
    assert not wrong, "; ".join(wrong)

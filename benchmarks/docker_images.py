"""The container images' sizes and build times: the default (slim) image and the ``-torch`` one.

A by-hand benchmark (issue 36, point 2), not a test. It runs ``docker/ci.sh`` with the
``-torch`` variant on (``OCRSERVE_CI_TORCH=1``): the default image is built and checked as in
CI, then the ``-torch`` image is built (torch 2.13.0's CPU wheel from a local wheel index) and
serves an MMOCR DBNet archive made on the host from the ``../shared`` fixture, its boundaries
compared with MMOCR 0.6.3's. CI runs ``docker/ci.sh`` without the ``-torch`` part: its build
alone took 4.6 and 6.9 minutes on the shared 2-core CI machine (docs/docker.md, "What CI
tests").

Prints each step's wall time (from the script's own log) and each image's size (uncompressed,
as ``podman images`` shows it, and gzip-compressed, about what a registry transfers), with the
ratio to the default image. Needs what docker/ci.sh needs (root, podman, runc, mmdebstrap).

Example: ``python benchmarks/docker_images.py`` (``--no-torch`` for the default image only).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = {"default": "localhost/ocrserve:ci", "-torch": "localhost/ocrserve:ci-torch"}
STEP = re.compile(r"^== (?P<name>.*) \((?P<at>\d+) s\)$")


def compressed_mb(image: str) -> float:
    """Size of ``podman save`` (docker-archive) gzip-compressed at level 6, in MB."""
    out = subprocess.run(
        [
            "bash",
            "-o",
            "pipefail",
            "-c",
            'podman --runtime runc save --format docker-archive "$0" | gzip -6 | wc -c',
            image,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout) / 1e6


def size_mb(image: str) -> float:
    out = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-torch", action="store_true", help="the default image only")
    args = parser.parse_args()
    env = {
        **os.environ,
        "OCRSERVE_CI_TORCH": "0" if args.no_torch else "1",
        "OCRSERVE_CI_KEEP": "1",  # measured below, removed at the end
    }
    started = time.monotonic()
    proc = subprocess.Popen(
        ["docker/ci.sh"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    steps: list[tuple[str, int]] = []
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        print(line, flush=True)
        if match := STEP.match(line):
            steps.append((match["name"], int(match["at"])))
    rc = proc.wait()
    total = time.monotonic() - started
    try:
        if rc != 0:
            print(f"docker/ci.sh failed ({rc}): no table", file=sys.stderr)
            return rc
        print(f"\n{'step':<72} {'s':>6}")
        ends = [at for _, at in steps[1:]] + [round(total)]
        for (name, at), end in zip(steps, ends):
            print(f"{name[:72]:<72} {end - at:>6}")
        print(f"{'total':<72} {round(total):>6}")
        print(f"\n{'image':<10} {'MB':>8} {'gzip MB':>8} {'ratio':>6}")
        base = None
        for label, image in IMAGES.items():
            if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
                continue
            mb = size_mb(image)
            base = base or mb
            print(f"{label:<10} {mb:>8.0f} {compressed_mb(image):>8.0f} {mb / base:>6.2f}")
        return 0
    finally:
        for command in (["rmi", "-f", *IMAGES.values()], ["image", "prune", "-f"]):
            subprocess.run(["podman", *command], capture_output=True, check=False)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# Create a separate venv with the real TorchServe 0.12, torch 2.13 (CPU) and this checkout,
# unless one is there already. TorchServe's frontend is Java: Java 17 must be on PATH.
#
# Usage: benchmarks/peers/setup_torchserve.sh [VENV]   (default: benchmarks/peers/.venv,
#        or $TS_VENV). Prints the path of the torchserve launcher on its last line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-${TS_VENV:-$here/.venv}}"
python="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
    echo "setup_torchserve: java not found; install Java 17 (Debian: apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi
if ! java -version 2>&1 | grep -q 'version "17'; then
    echo "setup_torchserve: warning: TorchServe 0.12 is tested with Java 17; found: $(java -version 2>&1 | head -1)" >&2
fi
if [ -x "$venv/bin/torchserve" ] && "$venv/bin/python" -c 'import ocrserve, torch, ts' 2>/dev/null; then
    echo "setup_torchserve: using the existing $venv" >&2
    echo "$venv/bin/torchserve"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
"$venv/bin/pip" install --quiet torchserve==0.12.0 -e "$repo[torch]"
"$venv/bin/python" -c 'import ocrserve, torch, ts; print("torch", torch.__version__)' >&2
echo "$venv/bin/torchserve"

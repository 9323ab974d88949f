#!/usr/bin/env bash
# Entrypoint of the ocrserve image (docker/serve/Dockerfile), after MMOCR's docker/serve one.
#
#   serve [OPTIONS...]  the default command: `ocrserve start --foreground` with the container's
#                       config.properties; OPTIONS go to `ocrserve start` (command line beats
#                       TS_* variables, which beat the file). Starting with an option means serve.
#   healthcheck         exit 0 when the inference API's /ping answers Healthy (the HEALTHCHECK);
#                       the address is the configured one, 0.0.0.0 asked on 127.0.0.1.
#   anything else       run as is, e.g. `ocrserve key` or `bash`.
#
# OCRSERVE_CONFIG names the config.properties (default /home/model-server/config.properties).
set -euo pipefail

config="${OCRSERVE_CONFIG:-/home/model-server/config.properties}"

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- serve "$@"
fi

case "$1" in
    serve)
        shift
        # exec: the server is PID 1 and gets `docker stop`'s SIGTERM (it drains, then exits).
        exec ocrserve start --foreground --ts-config "$config" "$@"
        ;;
    healthcheck)
        exec python3 - "$config" <<'PY'
import sys
import urllib.request

from ocrserve.settings import Settings, parse_address

host, port = parse_address("inference_address", Settings.load(None, sys.argv[1]).inference_address)
host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
host = f"[{host}]" if ":" in host else host
try:
    with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=10) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except OSError as exc:
    print(f"healthcheck: http://{host}:{port}/ping: {exc}", file=sys.stderr)
    sys.exit(1)
PY
        ;;
    *)
        exec "$@"
        ;;
esac

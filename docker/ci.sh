#!/usr/bin/env bash
# docker/ci.sh: build the ocrserve image from docker/serve/Dockerfile with podman and send the
# container real requests, as docs/docker.md runs it. No Docker daemon and no registry needed.
# Run from the repository root, as root, after .ci/run's `apt-get install podman runc mmdebstrap`
# and with the host's virtual environment (.venv, ocrserve installed) for `ocrserve archive`.
# Exits 0 only when every check passed; prints the images' sizes.
#
#   1. a Debian bookworm base (mmdebstrap: python3, python3-venv, ca-certificates, with
#      bookworm-updates and -security), imported as localhost/ocrserve-base:bookworm
#   2. the default (slim) image: no torch in it, its size
#   3. a host model store written by `ocrserve archive --det --rec --cls` (the bundled PP-OCRv6
#      ONNX files), mounted read-only; ports published on 127.0.0.1; /ping, a prediction on
#      demo/demo_text_det.jpg with the key read from the container (401 without it), the
#      management API's model list, metrics, the HEALTHCHECK, `podman stop` exiting 0
#   4. with OCRSERVE_CI_TORCH=1 only (its build alone took 5 to 7 minutes here, so CI leaves it
#      to benchmarks/docker_images.py): the -torch variant (TORCH_VERSION=2.13.0 from a local wheel
#      index) serving an MMOCR DBNet archive (the ../shared fixture, archived on the host), its
#      boundaries those MMOCR 0.6.3 wrote
#
# Environment:
#   OCRSERVE_CI_CACHE  kept between runs: the base tarball (rebuilt after 7 days) and the torch
#                      wheel index (default /var/cache/ocrserve-ci; CI starts without it)
#   OCRSERVE_CI_PORT   first of three free host ports (default 18080)
#   OCRSERVE_CI_TORCH  1: also build and check the -torch variant (default 0)
#   OCRSERVE_CI_BREAK  wrong-port: ask a port the container does not publish (the run must fail)
#   OCRSERVE_CI_KEEP   1: keep the images afterwards (default: removed, the base and cache kept)
set -euo pipefail

cache="${OCRSERVE_CI_CACHE:-/var/cache/ocrserve-ci}"
port="${OCRSERVE_CI_PORT:-18080}"
build_torch="${OCRSERVE_CI_TORCH:-0}"
torch_version=2.13.0
base_image=localhost/ocrserve-base:bookworm
image=localhost/ocrserve:ci
torch_image=localhost/ocrserve:ci-torch
container="ocrserve-ci"
fixture=../shared/fixtures/mmocr-0.6.3/textdet/dbnet_r18_fpnc_1200e_icdar2015
fixture_image=../shared/fixtures/mmocr-0.6.3/images/det_600x900.jpg
# Podman's default rlimits are refused on these machines; crun refuses cgroups in hybrid mode.
limits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
started=$SECONDS

pm() { podman --runtime runc "$@"; }
step() { echo "== $* ($((SECONDS - started)) s)"; }
fail() {
  echo "docker/ci.sh: FAILED: $*" >&2
  exit 1
}

[ -f docker/serve/Dockerfile ] || fail "run from the repository root"
for tool in podman runc mmdebstrap curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install podman runc mmdebstrap curl"
done
[ -x .venv/bin/ocrserve ] || fail "no .venv/bin/ocrserve: install ocrserve into .venv first"
ocrserve=.venv/bin/ocrserve
python=.venv/bin/python

work=$(mktemp -d /tmp/ocrserve-ci.XXXXXX)
cleanup() {
  local rc=$?
  if pm container exists "$container" 2>/dev/null; then
    [ "$rc" -eq 0 ] || { echo "-- container log (last 40 lines)"; pm logs --tail 40 "$container" || true; }
    pm rm -f "$container" >/dev/null || true
  fi
  if [ "${OCRSERVE_CI_KEEP:-0}" != 1 ]; then
    pm rmi -f "$image" "$torch_image" >/dev/null 2>&1 || true
    pm image prune -f >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  echo "docker/ci.sh: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
}
trap cleanup EXIT

# -- 1. the base image -----------------------------------------------------------------------------
mkdir -p "$cache"
base_tar="$cache/bookworm-python3.tar"
if [ -z "$(find "$base_tar" -mtime -7 2>/dev/null)" ]; then
  step "mmdebstrap: Debian bookworm + python3 into $base_tar"
  # minbase, no documentation; merged /usr without the usrmerge package (it pulls in perl).
  timeout 900 mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$work/base.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" </dev/null \
    >"$work/mmdebstrap.log" 2>&1 || { tail -30 "$work/mmdebstrap.log"; fail "mmdebstrap failed"; }
  mv "$work/base.tar" "$base_tar"
  pm rmi -f "$base_image" >/dev/null 2>&1 || true
fi
# Imported again only when the tarball is new: the same base image keeps the build cache warm.
if ! pm image exists "$base_image"; then
  step "podman import $base_tar"
  # The Dockerfile extends PATH, so the base must set it.
  pm import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$base_tar" "$base_image" >/dev/null
fi

# pip inside the build reaches the package registries through a proxy whose certificate
# authority is only in the host's bundle: lend it to the build (the image keeps its own).
build=(podman --runtime runc build --format docker "${limits[@]}" --build-arg "BASE_IMAGE=$base_image"
  -f docker/serve/Dockerfile)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  build+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

size_mb() { echo $(($(pm image inspect --format '{{.Size}}' "$1") / 1000000)); }

# -- 2. the default image ---------------------------------------------------------------------------
step "podman build -t $image (the default, slim image)"
timeout 1200 "${build[@]}" --quiet -t "$image" . >/dev/null || fail "the default image did not build"
[ "$(pm image inspect --format '{{json .Config.Healthcheck.Test}}' "$image")" \
  = '["CMD","/usr/local/bin/entrypoint.sh","healthcheck"]' ] || fail "the image has no HEALTHCHECK"
if pm run --rm "${limits[@]}" --entrypoint python "$image" -c 'import torch' 2>/dev/null; then
  fail "the default image carries torch"
fi
echo "default image $image: $(size_mb "$image") MB"

# -- 3. a host model store served from the container -------------------------------------------------
serve() {  # serve IMAGE STORE: run IMAGE as docs/docker.md does, STORE mounted; wait for /ping
  pm rm -f "$container" >/dev/null 2>&1 || true
  pm run -d --name "$container" "${limits[@]}" \
    -p "127.0.0.1:$port:8080" -p "127.0.0.1:$((port + 1)):8081" -p "127.0.0.1:$((port + 2)):8082" \
    --mount "type=bind,source=$2,target=/home/model-server/model-store,readonly" \
    "$1" >/dev/null
  ask="$port"
  [ "${OCRSERVE_CI_BREAK:-}" != wrong-port ] || ask=$((port + 10))
  inference="http://127.0.0.1:$ask"
  management="http://127.0.0.1:$((ask + 1))"
  metrics="http://127.0.0.1:$((ask + 2))"
  local deadline=$((SECONDS + 180))
  until [ "$(curl -s -m 5 "$inference/ping" | tr -d ' \n')" = '{"status":"Healthy"}' ]; do
    [ "$(pm inspect --format '{{.State.Running}}' "$container")" = true ] \
      || fail "the container exited before /ping answered"
    [ "$SECONDS" -lt "$deadline" ] || fail "$inference/ping did not answer Healthy in 180 s"
    sleep 2
  done
  echo "GET $inference/ping: Healthy"
}

stop_gracefully() {
  step "podman stop $container"
  pm stop --time 60 "$container" >/dev/null
  local code
  code=$(pm inspect --format '{{.State.ExitCode}}' "$container")
  [ "$code" = 0 ] || fail "the server exited $code after podman stop (SIGTERM), not 0"
  echo "podman stop: the server drained and exited 0"
}

step "ocrserve archive --det --rec --cls (the bundled PP-OCRv6 ONNX files) on the host"
store="$work/store"
models=$("$python" -c 'from ocrserve.ppocr.weights import weights_path as w; print(w("det").parent)')
"$ocrserve" archive --det "$models/PP-OCRv6_det_small.onnx" --rec "$models/PP-OCRv6_rec_small.onnx" \
  --cls "$models/ch_ppocr_mobile_v2.0_cls_mobile.onnx" --output-folder "$store" --model-name ppci
# The container's user (model-server) is not the host's: the store must be readable by others.
chmod 0755 "$work" "$store" && chmod 0644 "$store"/*.mar

step "podman run $image with the host store mounted"
serve "$image" "$store"
key=$(pm exec "$container" ocrserve key) || fail "ocrserve key failed in the container"
management_key=$(pm exec "$container" ocrserve key --type management) || fail "no management key"

code=$(curl -s -o /dev/null -w '%{http_code}' "$inference/predictions/ppci" -T demo/demo_text_det.jpg)
[ "$code" = 401 ] || fail "a prediction without the key answered $code, not 401"
curl -sf -m 120 "$inference/predictions/ppci" -T demo/demo_text_det.jpg \
  -H "Authorization: Bearer $key" >"$work/ocr.json" || fail "POST /predictions/ppci failed"
grep -q '"Welcome to ocrserve"' "$work/ocr.json" \
  || fail "the answer lacks \"Welcome to ocrserve\": $(head -c 400 "$work/ocr.json")"
echo "POST /predictions/ppci demo/demo_text_det.jpg: \"Welcome to ocrserve\" found"

curl -sf "$management/models" -H "Authorization: Bearer $management_key" >"$work/models.json" \
  || fail "GET $management/models failed"
"$python" - "$work/models.json" <<'PY' || fail "the management API does not list the host store's models"
import json, sys
names = sorted(m["modelName"] for m in json.load(open(sys.argv[1]))["models"])
assert names == ["ppci", "ppci_det", "ppci_rec"], names
print("GET /models:", ", ".join(names))
PY

curl -sf "$metrics/metrics" >"$work/metrics.txt" || fail "GET $metrics/metrics failed"
grep -q '^ts_inference_requests_total{.*model_name="ppci"' "$work/metrics.txt" \
  || fail "the metrics do not count the ppci request"
echo "GET /metrics: ts_inference_requests_total counts the ppci request"

pm healthcheck run "$container" >/dev/null || fail "the HEALTHCHECK command failed"
echo "podman healthcheck run: healthy"
stop_gracefully
pm rm "$container" >/dev/null

# -- 4. the -torch variant serving an MMOCR archive ----------------------------------------------------
if [ "$build_torch" != 1 ]; then
  echo "the -torch variant is not built (OCRSERVE_CI_TORCH=1 builds it: docs/docker.md)"
elif [ ! -d "$fixture" ]; then
  echo "SKIPPED: the -torch variant (no $fixture: ../shared is absent)"
else
  # The Dockerfile's default torch index is not reachable from here: a file index of the wheels
  # pip finds for torch $torch_version (this machine's local wheel folder has its CPU build).
  index="$cache/torch-$torch_version-index"
  if [ ! -f "$index/.complete" ]; then
    step "a local wheel index for torch $torch_version in $index"
    rm -rf "$index" "$work/wheels"
    "$python" -m pip download --quiet --only-binary :all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$work/wheels" "torch==$torch_version"
    for wheel in "$work/wheels"/*.whl; do
      name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]' '[:lower:]' | tr '_.' '--')
      mkdir -p "$index/simple/$name" && mv "$wheel" "$index/simple/$name/"
      # pip reads a file:// index's project folder through its index.html (PEP 503).
      printf '<a href="%s">%s</a>\n' "${wheel##*/}" "${wheel##*/}" >>"$index/simple/$name/index.html"
    done
    touch "$index/.complete"
  fi
  step "podman build -t $torch_image (TORCH_VERSION=$torch_version)"
  timeout 1200 "${build[@]}" --quiet -t "$torch_image" -v "$index:/torch-index:ro" \
    --build-arg "TORCH_VERSION=$torch_version" --build-arg TORCH_INDEX_URL=file:///torch-index/simple \
    . >/dev/null || fail "the -torch image did not build"
  echo "torch image $torch_image: $(size_mb "$torch_image") MB"

  step "ocrserve archive (MMOCR 0.6.3 DBNet r18 fixture, --runtime torch) on the host"
  mmocr_store="$work/mmocr-store"
  "$ocrserve" archive "$fixture/dbnet_r18_fpnc_1200e_icdar2015.py" "$fixture/checkpoint.pth" \
    --output-folder "$mmocr_store" --model-name dbnet
  chmod 0755 "$mmocr_store" && chmod 0644 "$mmocr_store"/*.mar
  step "podman run $torch_image with the MMOCR store mounted"
  serve "$torch_image" "$mmocr_store"
  key=$(pm exec "$container" ocrserve key) || fail "ocrserve key failed in the container"
  curl -sf -m 300 "$inference/predictions/dbnet" -T "$fixture_image" \
    -H "Authorization: Bearer $key" >"$work/dbnet.json" || fail "POST /predictions/dbnet failed"
  # MMOCR 0.6.3's own answer on that image (the fixture); the order of equal rows may differ.
  "$python" - "$work/dbnet.json" "$fixture/base/det_600x900.result.json" <<'PY' \
    || fail "the -torch image's DBNet boundaries differ from MMOCR 0.6.3's"
import json, sys
import numpy as np
served = json.load(open(sys.argv[1]))["boundary_result"]
mmocr = json.load(open(sys.argv[2]))["boundary_result"]
assert len(served) == len(mmocr), (len(served), len(mmocr))
a, b = (np.array(sorted(map(tuple, x))) for x in (served, mmocr))
diff = float(np.abs(a - b).max()) if len(a) else 0.0
assert diff < 1e-2, diff
print(f"POST /predictions/dbnet: {len(served)} boundaries, max |served - MMOCR 0.6.3| = {diff:.1e}")
PY
  stop_gracefully
  pm rm "$container" >/dev/null
fi
echo "sizes: default $(size_mb "$image") MB$(pm image exists "$torch_image" && echo ", -torch $(size_mb "$torch_image") MB")"

#!/usr/bin/env bash
# Installs what the recorders need into tests/.deps (idempotent):
# @grpc/grpc-js from npm, grpcio and awslambdaric from PyPI in a virtualenv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deps="$here/.deps"
mkdir -p "$deps"
if [ ! -x "$deps/venv/bin/python" ]; then
  python3 -m venv "$deps/venv"
fi
if ! "$deps/venv/bin/python" -c 'import grpc, moto.server, cfnlint, awslambdaric, snapshot_restore_py' 2>/dev/null; then
  "$deps/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
if [ ! -d "$here/recorders/node/node_modules/@grpc/grpc-js" ] || [ ! -d "$here/recorders/node/node_modules/grpc-js-1-8" ]; then
  (cd "$here/recorders/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Debian's packages: headless Chromium for the HTML report test, faketime
# for the tests that run the collector with its clock years ahead, a JDK
# with grpc-java and Netty for the Java recorder, Go and grpc-go (1.33,
# built offline in GOPATH mode) for the Go function's recorder.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
# grpc-java with Netty and a JDK for the Java recorder (record_java.py).
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
[ -e /usr/share/java/grpc-netty.jar ] || missing+=(libgrpc-java)
[ -e /usr/share/java/netty-codec-http2.jar ] || missing+=(libnetty-java)
[ -e /usr/share/java/perfmark-api.jar ] || missing+=(libperfmark-java)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/google.golang.org/grpc/keepalive ] || missing+=(golang-google-grpc-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "tests/setup.sh: install Debian's ${missing[*]} for the browser, clock, Java and Go recorder tests (needs root)" >&2
  fi
fi
echo "recorder dependencies ready: $deps/venv, tests/recorders/node/node_modules" >&2

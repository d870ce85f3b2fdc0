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
# fetch_deb SHA256 POOL_PATH DIR SUITE: a .deb from Debian's pool into DIR,
# checked against its pinned SHA256. A pinned file leaves the pool (404)
# when a point release replaces its version: then SUITE's current version
# of the package is fetched instead, checked against the SHA256 in SUITE's
# Packages index, itself checked against the InRelease file that gpgv
# verifies with Debian's archive keyring, and said. Any other failure fails.
fetch_deb() {
  local sha="$1" path="$2" tmp="$3" suite="$4" name arch pkg index found code
  name="$(basename "$path")"
  code="$(curl -sS --retry 3 -w '%{http_code}' -o "$tmp/$name" "http://deb.debian.org/debian/$path")"
  if [ "$code" = 200 ]; then
    echo "$sha  $tmp/$name" | sha256sum -c --quiet -
    return
  fi
  if [ "$code" != 404 ]; then
    echo "setup.sh: fetching $path: HTTP $code" >&2
    return 1
  fi
  pkg="${name%%_*}"
  arch="${name##*_}" && arch="${arch%.deb}"
  index="$tmp/Packages-$suite-$arch"
  if [ ! -s "$index" ]; then
    curl -sSf --retry 3 -o "$tmp/InRelease-$suite" "http://deb.debian.org/debian/dists/$suite/InRelease"
    gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$tmp/Release-$suite" "$tmp/InRelease-$suite" 2>/dev/null
    # The index whose SHA256 the signed Release lists, by that hash (a
    # mirror may serve a newer index than its InRelease by name).
    found="$(awk -v f="main/binary-$arch/Packages.xz" '/^SHA256:/ { in256 = 1; next } /^[^ ]/ { in256 = 0 } in256 && $3 == f { print $1 }' "$tmp/Release-$suite")"
    curl -sSf --retry 3 -o "$index.xz" "http://deb.debian.org/debian/dists/$suite/main/binary-$arch/by-hash/SHA256/$found" 2>/dev/null ||
      curl -sSf --retry 3 -o "$index.xz" "http://deb.debian.org/debian/dists/$suite/main/binary-$arch/Packages.xz"
    if ! echo "$found  $index.xz" | sha256sum -c --quiet - 2>/dev/null; then
      echo "setup.sh: $path has left Debian's pool, and the mirror's $suite index does not match its signed Release" >&2
      return 1
    fi
    xz -dc "$index.xz" > "$index"
  fi
  found="$(awk -v p="Package: $pkg" 'BEGIN { RS = ""; FS = "\n" }
    { hit = 0; f = ""; s = ""
      for (i = 1; i <= NF; i++) {
        if ($i == p) hit = 1
        if ($i ~ /^Filename: /) f = substr($i, 11)
        if ($i ~ /^SHA256: /) s = substr($i, 9)
      }
      if (hit) { print s, f; exit } }' "$index")"
  if [ -z "$found" ]; then
    echo "setup.sh: $path has left Debian's pool and $suite has no $pkg" >&2
    return 1
  fi
  echo "setup.sh: $name has left Debian's pool; using $suite's current ${found#* }" >&2
  curl -sSf --retry 3 -o "$tmp/$name" "http://deb.debian.org/debian/${found#* }"
  echo "${found%% *}  $tmp/$name" | sha256sum -c --quiet -
}
# grpc-go 1.64 and Go 1.24 (Debian trixie's packages) for record_go.py's
# `--grpc 1.64`: each .deb fetched from Debian's pool, checked against the
# SHA256 that trixie's Packages index (dists/trixie/main/binary-{all,amd64})
# gives for it, and unpacked with `dpkg -x` into tests/.deps/go-trixie
# (nothing is installed). grpc-go's Depends cut to what its client imports
# (`go list -deps`). Skipped when present.
go_trixie="$deps/go-trixie"
if [ ! -x "$go_trixie/usr/lib/go-1.24/bin/go" ] || [ ! -e "$go_trixie/usr/share/gocode/src/google.golang.org/grpc/version.go" ]; then
  tmp="$(mktemp -d)"
  while read -r sha path; do
    fetch_deb "$sha" "$path" "$tmp" trixie
  done <<'DEBS'
5a52fec571e4a5d7eddf0b9e1366901f7da8e7b19d7c869443f36ef50077bdb3 pool/main/g/golang-google-grpc/golang-google-grpc-dev_1.64.0-7_all.deb
93c6c109bbc0f1d55523282a16739d10634499c04f6d066a6aa58b67b687a44f pool/main/g/golang-1.24/golang-1.24-go_1.24.4-1_amd64.deb
c396bc2c2e94606e0a060cff52b9bbbf1d7cefacb040eb3c40a55604111e66e1 pool/main/g/golang-1.24/golang-1.24-src_1.24.4-1_all.deb
1f7576dfed2b293220186dd8a9c5c97b0858334ad67a700eb8569252b97ff395 pool/main/g/golang-golang-x-net/golang-golang-x-net-dev_0.27.0-2_all.deb
043942ee171abf52df6d43d1f56bc5aee4d9823e967fe38eee6236507b2e33fc pool/main/g/golang-golang-x-sys/golang-golang-x-sys-dev_0.22.0-1_all.deb
00fd442cb79b6a344a3222b11d4c71f3c6b13d3cc9c55901e343fbbb9970147c pool/main/g/golang-golang-x-text/golang-golang-x-text-dev_0.22.0-1_all.deb
22547f1657c5135316e390f942a0ae05992e503bb2f98deed16be6fd7b6f3cff pool/main/g/golang-google-genproto/golang-google-genproto-dev_0.0~git20210726.e7812ac-4_all.deb
28914f483ac5e3a95c62fff519b82d8f6c4d9f40f7a9ca330a0841bdc79e867d pool/main/g/golang-google-protobuf/golang-google-protobuf-dev_1.36.5-1_all.deb
2acaa782706b5d72e2f2ee1d387a8fd45f0b51c14b0494c28913219df99cb440 pool/main/g/golang-github-golang-protobuf-1-5/golang-github-golang-protobuf-1-5-dev_1.5.4-1_all.deb
DEBS
  rm -rf "$go_trixie.part" && mkdir -p "$go_trixie.part"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$go_trixie.part"; done
  rm -rf "$tmp" "$go_trixie" && mv "$go_trixie.part" "$go_trixie"
fi
# Apache Log4j 2.19 (Debian bookworm's liblog4j2-java, its jars only:
# log4j-api, log4j-core, log4j-jul) for record_java.py's `log4j2` setting,
# where java.util.logging and Netty log through Log4j 2's layout. Unpacked
# with `dpkg -x` into tests/.deps/log4j2; skipped when present.
log4j2="$deps/log4j2"
if [ ! -e "$log4j2/usr/share/java/log4j-jul.jar" ]; then
  tmp="$(mktemp -d)"
  fetch_deb 000badfa04db9c243873bbda3b10c408b14e63ca88eb2f7d7708717bc4897f49 pool/main/a/apache-log4j2/liblog4j2-java_2.19.0-2_all.deb "$tmp" bookworm
  rm -rf "$log4j2.part" && mkdir -p "$log4j2.part"
  dpkg -x "$tmp"/*.deb "$log4j2.part"
  rm -rf "$tmp" "$log4j2" && mv "$log4j2.part" "$log4j2"
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

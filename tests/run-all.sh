#!/usr/bin/env bash
# Every test: installs the recorders' dependencies, then runs the whole
# workspace's tests (unit, doc, property, recorded fixtures, and a fresh
# recording of really frozen grpc-js and grpcio functions scored against
# its ground truth). tests/run-group.sh runs a group of them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tests/setup.sh"
export THAWTRACE_PYTHON="$root/tests/.deps/venv/bin/python"
cd "$root"
# Every test binary runs even when one fails, so one failure hides no other.
cargo test --workspace --no-fail-fast

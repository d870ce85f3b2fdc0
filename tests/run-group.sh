#!/usr/bin/env bash
# Runs one group of the tests, so a change can be checked by the group it
# touches (README, "Tests"):
#
#   unit        unit, doc and property tests, and every test binary not in
#               a group below: the recorded fixtures, the CLI against them,
#               the instrument on loopback. Needs no Python, Node, browser
#               or AWS emulator (nor tests/setup.sh); openssl, prlimit and
#               mkfifo, which Debian has.
#   recordings  fresh recordings of real grpc-js, grpcio, botocore, tonic,
#               grpc-java and grpc-go functions frozen with SIGSTOP (Python,
#               Node, Java, Go, a network namespace), scored against what
#               the recorder saw.
#   aws         AWS APIs on loopback: CloudWatch Logs, DynamoDB and SQS in moto, the Lambda
#               Runtime API, an OTLP receiver, the fault proxy, cfn-lint on the template.
#   browser     the HTML report in headless Chromium.
#   all         every test: tests/run-all.sh, what CI runs.
#
# A test binary is listed here only when it needs more than Rust: a new one
# runs in `unit` until it is listed, and always in `all`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

recordings=(fresh_recording fresh_java fresh_go fresh_go164 fresh_modes settings neighbours e2e harness_selftest)
aws=(cloudwatch lambda_handler otlp dashboards shared_state archives faults)
browser=(html)

usage="usage: bash tests/run-group.sh unit|recordings|aws|browser|all"
[ $# -eq 1 ] || { echo "$usage" >&2; exit 2; }

selected=()
case "$1" in
  unit)
    listed=" ${recordings[*]} ${aws[*]} ${browser[*]} "
    # Cargo's test binaries: tests/NAME.rs and tests/NAME/main.rs.
    for f in */tests/*.rs */tests/*/main.rs; do
      [ -e "$f" ] || continue
      name="$(basename "${f%/main.rs}" .rs)"
      [[ $listed == *" $name "* ]] || selected+=("$name")
    done
    ;;
  recordings) selected=("${recordings[@]}") ;;
  aws) selected=("${aws[@]}") ;;
  browser) selected=("${browser[@]}") ;;
  all) exec bash "$root/tests/run-all.sh" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

if [ "$1" != unit ]; then
  bash "$root/tests/setup.sh"
  export THAWTRACE_PYTHON="$root/tests/.deps/venv/bin/python"
fi

targets=()
for name in "${selected[@]}"; do
  targets+=(--test "$name")
done

# The instrument's examples are programs some tests run (the echo server,
# the Lambda function); `cargo test` with targets named builds none.
cargo build --workspace --examples
status=0
if [ "$1" = unit ]; then
  cargo test --workspace --no-fail-fast --lib --bins "${targets[@]}" || status=$?
  # Doc tests cannot be selected with other targets: a run of their own.
  cargo test --workspace --no-fail-fast --doc || status=$?
else
  cargo test --workspace --no-fail-fast "${targets[@]}" || status=$?
fi
exit "$status"

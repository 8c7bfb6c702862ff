#!/usr/bin/env bash
# The API fuzzed from its own OpenAPI document with schemathesis: a real `portcullis serve`
# (debug build, or PORTCULLIS_TEST_BIN) on embedded SQLite in a scratch directory, an admin
# token, and every operation of the served /openapi.json with valid and invalid input, all
# checks: no 5xx, every status code and body as documented (errors in the one error shape),
# invalid input refused, valid input accepted. Exits non-zero on any failure and leaves the
# report (JUnit XML and the cassette of failing requests) in $SCHEMATHESIS_OUT
# (default: a fresh temporary directory, printed at the end).
#
#   scripts/schemathesis.sh [examples per operation, default 100] [any extra `st run` options]
#   scripts/test.sh runs it with 10 examples per operation (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-100}"
shift || true
source scripts/services.sh
ensure_schemathesis
if [ -z "${PORTCULLIS_TEST_BIN:-}" ]; then cargo build --locked -q -p portcullis; fi
bin="${PORTCULLIS_TEST_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/portcullis}"
work=$(mktemp -d)
out="${SCHEMATHESIS_OUT:-$(mktemp -d)}"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_LISTEN="127.0.0.1:$port"
# The fuzzer sends thousands of requests from one address: rate limits would answer most of
# them 429 and hide the handlers behind.
export PORTCULLIS_RATE_LIMIT_IP_BURST=100000 PORTCULLIS_RATE_LIMIT_ACCOUNT_BURST=100000 PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE=1000000 PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE=1000000
token=$("$bin" operators create --name schemathesis --role admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
set +e
PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$schemathesis_bin" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $token" \
  --max-examples "$examples" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --report junit,vcr --report-dir "$out" \
  --no-color "$@"
status=$?
set -e
if grep -qE 'panicked|ERROR' "$work/server.log"; then
  echo "schemathesis: the server logged errors:" >&2
  grep -E 'panicked|ERROR' "$work/server.log" | head -20 >&2
  status=1
fi
echo "schemathesis: report in $out"
exit "$status"

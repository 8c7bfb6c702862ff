#!/usr/bin/env bash
# Runs every test of the workspace, against embedded SQLite and the real PostgreSQL server,
# after starting (or installing) what the tests need. This is the README's test command and
# the only thing CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/data ]; then
  echo "test: ../shared (the published test vectors) must sit beside this checkout" >&2
  exit 1
fi

# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_postgres
ensure_nats
ensure_browser
ensure_aiosmtpd
ensure_schemathesis
ensure_cargo_deny
export PORTCULLIS_TEST_POSTGRES_URL="${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Each test creates its own database; drop the ones earlier runs left behind.
psql -q -At "$PORTCULLIS_TEST_POSTGRES_URL" -c \
  "SELECT datname FROM pg_database WHERE datname LIKE 'portcullis\_it\_%' OR datname LIKE 'portcullis\_conf\_%'" |
  while read -r db; do
    psql -q "$PORTCULLIS_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
      echo "test: could not drop the stale test database $db (left for later)" >&2
  done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The supply chain: licences, banned crates (OpenSSL), crates.io as the only source (deny.toml).
"$cargo_deny_bin" --locked check licenses bans sources
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The security center, the console and the demo in real Chromium, against the real binary, on
# SQLite and PostgreSQL: every tests/browser/*.test.mjs (demo.test.mjs among them).
cargo build --locked -q -p portcullis
(cd tests/browser &&
  PORTCULLIS_TEST_BIN="${CARGO_TARGET_DIR:-$PWD/../../target}/debug/portcullis" node --test --test-concurrency=1 ./*.test.mjs) 2>&1 |
  tee -a "$log"
browser_status=${PIPESTATUS[0]}
[ "$browser_status" -eq 0 ] || status=$browser_status
# The API fuzzed from its own OpenAPI document (schemathesis, 10 examples per operation, every
# check, about a minute; `scripts/schemathesis.sh 1000` is the long run; docs/security.md).
PORTCULLIS_TEST_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/portcullis" \
  scripts/schemathesis.sh 10 2>&1 | tee -a "$log"
schemathesis_status=${PIPESTATUS[0]}
[ "$schemathesis_status" -eq 0 ] || status=$schemathesis_status
# Load and soak, short: verification, decisions and ingest together for 20 s on the debug build
# (no failed request, no refused verification or event, no error logged);
# `scripts/bench-mixed-soak.sh 600` on a release build is the long run (docs/benchmarks.md).
PORTCULLIS_BENCH_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/portcullis" \
  PORTCULLIS_BENCH_LOADGEN="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/loadgen" \
  SOAK_WINDOW=10 SOAK_VERIFY_RATE=300 SOAK_DECIDE_RATE=100 SOAK_INGEST_RATE=500 \
  scripts/bench-mixed-soak.sh 20 2>&1 | tee -a "$log"
soak_status=${PIPESTATUS[0]}
[ "$soak_status" -eq 0 ] || status=$soak_status
# The hand-written parsers under libFuzzer, 7 s for each of the eight targets (`scripts/fuzz.sh
# 3600` is the long run). It needs the nightly toolchain, which cannot be fetched here: without
# it, say so.
scripts/fuzz.sh 7 2>&1 | tee -a "$log"
fuzz_status=${PIPESTATUS[0]}
case "$fuzz_status" in
  0) ;;
  2) echo "test: fuzzing skipped: no nightly toolchain on this machine" >&2 ;;
  *) status=$fuzz_status ;;
esac
set -e
# One closing line for the whole workspace (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

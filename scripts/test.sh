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
export PORTCULLIS_TEST_POSTGRES_URL="${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Each test creates its own database; drop the ones earlier runs left behind.
psql -q -At "$PORTCULLIS_TEST_POSTGRES_URL" -c \
  "SELECT datname FROM pg_database WHERE datname LIKE 'portcullis\_it\_%' OR datname LIKE 'portcullis\_conf\_%'" |
  while read -r db; do psql -q "$PORTCULLIS_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null; done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

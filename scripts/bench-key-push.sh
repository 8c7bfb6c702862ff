#!/usr/bin/env bash
# Key-change push benchmark: how long a revocation committed on one node takes to be refused on
# another, against a same-node refusal measured in the same run (the cost of observing a
# refusal at all: one verification's round trip). Two `portcullis serve` processes (release
# build) share one fresh PostgreSQL database and one keyring, each polling only once an hour,
# so the refusal on the second node comes from the push. Two rounds:
#   - nats: both nodes with `nats_url` (the local nats-server): pushed on core NATS;
#   - postgres: no NATS: pushed by PostgreSQL's notifications (LISTEN/NOTIFY).
# Each round revokes N keys (half polled on the second node, half on the first) with
# crates/server/examples/key_push_latency.rs and prints p50/p90/p99/max in milliseconds.
#
#   scripts/bench-key-push.sh [revocations per round, default 200]
#   PORTCULLIS_BENCH_PROFILE=debug scripts/bench-key-push.sh 20   (a quick check of the script)
set -euo pipefail
cd "$(dirname "$0")/.."
revocations="${1:-200}"
source scripts/services.sh
ensure_postgres
ensure_nats
profile="${PORTCULLIS_BENCH_PROFILE:-release}"
flag=--release
if [ "$profile" = debug ]; then flag=; fi
cargo build $flag -q -p portcullis
cargo build $flag -q -p portcullis-server --example key_push_latency
target="${CARGO_TARGET_DIR:-$PWD/target}/$profile"
bin="$target/portcullis"
work=$(mktemp -d)
pids=()
stop_nodes() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap 'stop_nodes; rm -rf "$work"' EXIT

admin_url="${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="portcullis_bench_push_$$"
psql -q "$admin_url" -c "CREATE DATABASE $database" >/dev/null
trap 'stop_nodes; rm -rf "$work"; psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export PORTCULLIS_DATABASE_URL="${admin_url%/*}/$database"
export PORTCULLIS_KEYRING_FILE="$work/master-keys.toml" PORTCULLIS_DATA_DIR="$work/data"
export PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_REFRESH_INTERVAL_MS=3600000
token=$("$bin" operators create --name bench --role admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a node on a free port with the extra environment "$@"; sets `node_url`. (Not run in
# a command substitution: that subshell would keep the pid from `stop_nodes`.)
start_node() {
  local port
  port=$(free_port)
  env PORTCULLIS_LISTEN="127.0.0.1:$port" "$@" "$bin" serve >>"$work/nodes.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  node_url="http://127.0.0.1:$port"
}

round() {
  local name="$1"
  shift
  local first second
  start_node "$@"
  first=$node_url
  start_node "$@"
  second=$node_url
  echo "== $name: $revocations revocations"
  "$target/examples/key_push_latency" --first "$first" --second "$second" --token "$token" \
    --revocations "$revocations" --prefix "$name"
  stop_nodes
}

nats=(PORTCULLIS_NATS_URL=nats://127.0.0.1:4222 PORTCULLIS_NATS_STREAM=PORTCULLIS_BENCH_PUSH
  PORTCULLIS_NATS_SUBJECT='portcullis-bench-push.events.>' PORTCULLIS_NATS_CONSUMER=bench-push
  PORTCULLIS_NATS_KEY_SUBJECT=portcullis-bench-push.keys.changed)
round nats "${nats[@]}"
round postgres PORTCULLIS_NATS_URL=

# What the partitioned engine's scripts share (sourced by proof-partitions.sh and
# bench-partition-owner.sh): the binary (built unless PORTCULLIS_BENCH_BIN names one), the
# services, a work directory and the cleanup of what a run starts (processes, databases;
# PORTCULLIS_BENCH_KEEP=1 keeps the directory and its logs), and the feed with its one-process
# replay, the baseline: after `simulated_feed ACCOUNTS DAYS`, $feed, $events, $deciding and
# $replay_s are set and $work/replayed.jsonl holds the replay's decisions. `fresh_deployment
# NAME PARTITIONS` makes a database and stream names of its own for one run and exports the
# settings `portcullis serve` reads; $url and $prefix are then its database and subjects.
profile="${PORTCULLIS_BENCH_PROFILE:-release}"
bin="${PORTCULLIS_BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/$profile/portcullis}"
source scripts/services.sh
ensure_postgres && ensure_nats
if [ -n "${PORTCULLIS_BENCH_BIN:-}" ]; then :
elif [ "$profile" = release ]; then cargo build --release -q -p portcullis
else cargo build -q -p portcullis; fi
nats_url="${PORTCULLIS_TEST_NATS_URL:-nats://127.0.0.1:4222}"
admin_url="${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work=$(mktemp -d)
pids=()
databases=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for db in "${databases[@]}"; do
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [ -n "${PORTCULLIS_BENCH_KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
now() { date +%s.%N; }
sql() { psql -qtA "$1" -c "$2"; }

simulated_feed() {
  "$bin" simulate --accounts "$1" --days "$2" --seed 7 --out "$work/feed" >/dev/null
  feed="$work/feed/events.jsonl"
  events=$(wc -l <"$feed")
  local started
  started=$(now)
  "$bin" replay "$feed" --out "$work/replayed.jsonl" 2>"$work/replay.log"
  replay_s=$(python3 -c "print(f'{$(now) - $started:.3f}')")
  deciding=$(wc -l <"$work/replayed.jsonl")
}

fresh_deployment() {
  local name=$1 db="portcullis_${1}_$$"
  psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
  databases+=("$db")
  url="${admin_url%/*}/$db" prefix="run$$${name}.events"
  export PORTCULLIS_DATABASE_URL="$url" PORTCULLIS_DATA_DIR="$work/$name"
  export PORTCULLIS_KEYRING_FILE="$work/$name-keys.toml" PORTCULLIS_LOG_FORMAT=json
  export PORTCULLIS_NATS_URL="$nats_url" PORTCULLIS_NATS_STREAM="RUN_$$_$name"
  export PORTCULLIS_NATS_SUBJECT="$prefix.>" PORTCULLIS_NATS_CONSUMER="run-$$-$name"
  export PORTCULLIS_NATS_KEY_SUBJECT="" PORTCULLIS_ENGINE_PARTITIONS=$2
  export PORTCULLIS_PARTITION_LEASE_MS=5000 PORTCULLIS_LISTEN=127.0.0.1:0
}

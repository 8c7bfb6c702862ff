#!/usr/bin/env bash
# A backtest over the stored history: `portcullis simulate` writes ACCOUNTS accounts over 30
# days (default 8,600: about a million events), loaded into a release server on embedded SQLite
# through POST /v1/events; then three runs of POST /v1/policy/backtest of the policy in force
# (the shipped default) against a draft that changes one score, over the whole history with
# max_events 1,000,000. Prints the events stored, each run's wall time and the server's CPU
# time for it, and the report's headline figures.
#
#   scripts/bench-backtest.sh
#   ACCOUNTS=2000 scripts/bench-backtest.sh      (a quicker look: about 230,000 events)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${ACCOUNTS:-8600}"
if [ -z "${PORTCULLIS_BENCH_BIN:-}" ]; then cargo build --release -q -p portcullis; fi
bin="${PORTCULLIS_BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/portcullis}"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The load's batches and the backtest of a million events are measured, not cut at 10 s.
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_LISTEN="127.0.0.1:$port" \
  PORTCULLIS_REQUEST_TIMEOUT_MS=600000
token=$("$bin" operators create --name bench --role admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" simulate --accounts "$accounts" --days 30 --seed 1 --out "$work/sim" >/dev/null
"$bin" serve &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
auth="authorization: Bearer $token"

split -l 50000 "$work/sim/events.jsonl" "$work/part_"
started=$(date +%s.%N)
for part in "$work"/part_*; do
  curl -sf -o /dev/null -X POST -H "$auth" -H "content-type: application/x-ndjson" --data-binary "@$part" "$base/v1/events"
done
echo "loaded $(wc -l <"$work/sim/events.jsonl") events in $(python3 -c "print(round($(date +%s.%N) - $started, 1))") s"

curl -sf -H "$auth" "$base/v1/policy" | python3 -c '
import json, sys
text = json.load(sys.stdin)["text"]
print(json.dumps({"text": text.replace("score = 50", "score = 60", 1), "from": "2000-01-01T00:00:00Z",
                  "to": "2100-01-01T00:00:00Z", "max_events": 1000000}))' >"$work/backtest.json"
ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
for run in 1 2 3; do
  before=$(ticks)
  started=$(date +%s.%N)
  curl -sf -X POST -H "$auth" -H "content-type: application/json" --data-binary "@$work/backtest.json" \
    "$base/v1/policy/backtest" >"$work/report.json"
  wall=$(python3 -c "print(round($(date +%s.%N) - $started, 2))")
  cpu=$(python3 -c "print(round(($(ticks) - $before) / $hz, 2))")
  echo "run $run: ${wall} s wall, ${cpu} s server CPU"
done
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["report"]
b, a = r["before"], r["after"]
print(f"events {r['events']}, decided {r['decided']}, confirmed accounts {r['confirmed_accounts']}, changed {r['changed']}")
print(f"scam USD stopped {b['scam_usd_stopped']:.0f} -> {a['scam_usd_stopped']:.0f} of {b['scam_usd']:.0f}; "
      f"legitimate withdrawals held/blocked {b['legit_withdrawals_held']}/{b['legit_withdrawals_blocked']} -> "
      f"{a['legit_withdrawals_held']}/{a['legit_withdrawals_blocked']} of {b['legit_withdrawals']}")
PY

#!/usr/bin/env bash
# Load and soak: signature verification, synchronous decisions and event ingest together, at
# fixed rates, for a bounded time, against one `portcullis serve` on embedded SQLite. The time is
# cut into windows; in each, three open-loop generators (crates/server/examples/loadgen.rs,
# latencies counted from each request's scheduled departure) run side by side, and the server's
# resident memory is read at the window's end. Prints one line per window (p50 and p99 of each
# kind, failures, RSS) and a verdict: no failed request, no error in the server's log, and the
# resident memory flat after warm-up (growth from the end of the second window to the end, per
# window, against SOAK_MAX_GROWTH_PCT, default 2% a window). Exits 1 when any of that fails.
#
#   scripts/bench-mixed-soak.sh [seconds, default 600]
#   SOAK_VERIFY_RATE=4000 SOAK_DECIDE_RATE=1000 SOAK_INGEST_RATE=5000 SOAK_WINDOW=30 \
#     scripts/bench-mixed-soak.sh 600                      (the defaults; ingest in events/s)
#   PORTCULLIS_BENCH_BIN=<portcullis> PORTCULLIS_BENCH_LOADGEN=<loadgen> ...  (other builds)
#   SOAK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres ...   (on a fresh PostgreSQL
#     database made for the run and dropped after it, instead of embedded SQLite)
#
# On SQLite the resident memory includes SQLite's page cache (32 MiB per connection, filled as
# the database grows), so a rise there may be the cache filling; on PostgreSQL the process holds
# no database pages, and what it grows by is its own.
#
# Without PORTCULLIS_BENCH_BIN it builds and runs the release binaries. The test command runs
# a short version on the debug build (scripts/test.sh), where the verdict, not the figures,
# is what counts.
#
# Every request is distinct: verifications are signed afresh each window (a new nonce, a
# timestamp inside the window), decisions are new deciding events (withdrawals, new addresses,
# key widenings) over 10,000 accounts, ingest batches are 100 new logins and key uses over the
# same accounts, all stamped with the wall clock, so the engine keeps deciding in event time.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600}"
window="${SOAK_WINDOW:-30}"
verify_rate="${SOAK_VERIFY_RATE:-4000}"
decide_rate="${SOAK_DECIDE_RATE:-1000}"
ingest_rate="${SOAK_INGEST_RATE:-5000}"
max_growth="${SOAK_MAX_GROWTH_PCT:-2}"
windows=$(((duration + window - 1) / window))

if [ -z "${PORTCULLIS_BENCH_BIN:-}" ]; then
  cargo build --release -q -p portcullis
  cargo build --release -q -p portcullis-server --example loadgen
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="${PORTCULLIS_BENCH_BIN:-$target/release/portcullis}"
loadgen="${PORTCULLIS_BENCH_LOADGEN:-$target/release/examples/loadgen}"
work=$(mktemp -d)
server=""
soak_db=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$soak_db" ] && psql -q "$SOAK_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$soak_db\" WITH (FORCE)" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn
if [ -n "${SOAK_POSTGRES_URL:-}" ]; then
  soak_db="portcullis_soak_$$"
  psql -q "$SOAK_POSTGRES_URL" -c "CREATE DATABASE \"$soak_db\"" >/dev/null
  export PORTCULLIS_DATABASE_URL="${SOAK_POSTGRES_URL%/*}/$soak_db"
fi
# One address sends everything: the per-address limits would answer most of it 429.
export PORTCULLIS_RATE_LIMIT_IP_BURST=100000 PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE=1000000
export PORTCULLIS_RATE_LIMIT_ACCOUNT_BURST=100000 PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE=1000000
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORTCULLIS_LISTEN="127.0.0.1:$port"
token=$("$bin" operators create --name soak --role integration | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" accounts create acc_soak >/dev/null
"$bin" keys create --account acc_soak --scope read,trade --ip 127.0.0.0/8 >"$work/key.json"
"$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# The bodies of window $1: verify.jsonl, decide.jsonl, ingest.jsonl (one event a line).
prepare_window() {
  python3 - "$1" "$work" "$((verify_rate * window))" "$((decide_rate * window))" "$((ingest_rate * window))" <<'PY'
import hashlib, hmac, json, sys, time
from datetime import datetime, timezone
n_window, work, n_verify, n_decide, n_ingest = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
key = json.load(open(f"{work}/key.json"))
api_key, secret = key["key"]["api_key"], key["secret"].encode()
now = int(time.time() * 1000)
with open(f"{work}/verify.jsonl", "w") as out:
    for n in range(n_verify):
        payload = (f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.0125&price=97123.45"
                   f"&newClientOrderId=w{n_window}n{n}&recvWindow=60000&timestamp={now}")
        signature = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
        out.write(json.dumps({"api_key": api_key, "signature": signature, "payload": payload,
                              "ip": "127.0.0.1", "scope": "trade"}) + "\n")
def stamp(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
def head(kind, n, account, ms):
    ip = f"198.51.{account % 250}.{account // 250 % 40}"
    return {"id": f"soak-{kind}-{n_window}-{n}", "ts": stamp(ms), "account": f"a{account}",
            "ctx": {"ip": ip, "device_id": f"d{account}", "channel": "app"}}
with open(f"{work}/decide.jsonl", "w") as out:
    for n in range(n_decide):
        account = n * 7919 % 10000
        event = head("d", n, account, now + n * 1000 // max(1, n_decide // 30))
        kind = n % 4
        if kind in (0, 1):
            event |= {"type": "withdrawal.requested", "withdrawal_id": f"w{n_window}_{n}", "asset": "USDT",
                      "network": "TRX", "address": f"T{account}_{n % 3}", "amount": "250", "amount_usd": 250.0}
        elif kind == 2:
            event |= {"type": "address.added", "address": f"T{account}_{n % 3}", "asset": "USDT",
                      "network": "TRX", "step_up": "passkey"}
        else:
            event |= {"type": "api_key.updated", "key_id": f"k{account}", "scopes": ["read", "trade", "withdraw"],
                      "ip_allowlist": [f"{event['ctx']['ip']}/32"], "step_up": "totp"}
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
with open(f"{work}/ingest.jsonl", "w") as out:
    for n in range(n_ingest):
        account = n * 104729 % 10000
        event = head("i", n, account, now + n * 1000 // max(1, n_ingest // 30))
        if n % 2:
            event |= {"type": "login", "success": True, "method": "password"}
        else:
            event |= {"type": "api_key.used", "key_id": f"k{account}", "endpoint": "POST /api/v3/order",
                      "count": 20, "window_s": 60}
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
PY
}

rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
load() { # $1 path, $2 bodies, $3 rate (requests/s), $4 output, [$5 batch]
  "$loadgen" --url "http://127.0.0.1:$port$1" --token "$token" --bodies "$2" --rate "$3" \
    --connections 32 --seconds "$window" --batch "${5:-1}" >"$4" 2>&1
}

echo "soak: ${SOAK_POSTGRES_URL:+PostgreSQL, }$windows windows of ${window}s: verify $verify_rate/s, decisions $decide_rate/s, ingest $ingest_rate events/s (batches of 100)" >&2
echo "$(rss_mib)" >"$work/rss0"
for w in $(seq 1 "$windows"); do
  prepare_window "$w"
  load /v1/verify "$work/verify.jsonl" "$verify_rate" "$work/verify$w" &
  verify_job=$!
  load /v1/decisions "$work/decide.jsonl" "$decide_rate" "$work/decide$w" &
  decide_job=$!
  load /v1/events "$work/ingest.jsonl" "$((ingest_rate / 100))" "$work/ingest$w" 100 &
  ingest_job=$!
  wait "$verify_job" "$decide_job" "$ingest_job" || true
  rss_mib >"$work/rss$w"
done
echo >&2

# What the requests came to, beyond their HTTP status: verifications passed and refused (by
# reason), decisions by verdict, events applied; and how the decisions were made (groups, the
# requests they held, answers read back from storage).
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" |
  grep -E '^portcullis_(verify_total|decisions_total|engine_events_total|engine_refused_lines_total|decision_groups_total|decision_group_requests_total|decisions_read_back_total)' >"$work/metrics" || true

python3 - "$work" "$windows" "$max_growth" <<'PY'
import re, sys
sys.path.insert(0, "scripts")
from bench_figures import loadgen
work, windows, max_growth = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def figures(path):
    found = loadgen(path)
    return (found, "") if found else (None, open(path).read().strip())
failed, problems, rss = 0, [], []
print("window | verify req/s p50 p99 ms | decisions req/s p50 p99 ms | ingest batches/s p50 p99 ms | failed | RSS MiB")
for w in range(1, windows + 1):
    row, bad = [], 0
    for kind in ("verify", "decide", "ingest"):
        f, error = figures(f"{work}/{kind}{w}")
        if f is None:
            problems.append(f"window {w} {kind}: {error or 'no figures'}")
            row.append("(no figures)")
            continue
        bad += int(f["failed"])
        row.append(f"{f['rate']:>7,.0f} {f['p50']:6.2f} {f['p99']:7.2f}")
    failed += bad
    rss.append(float(open(f"{work}/rss{w}").read()))
    print(f"{w:>6} | {row[0]} | {row[1]} | {row[2]} | {bad:>6} | {rss[-1]:7.1f}")
metrics = [line.split() for line in open(f"{work}/metrics") if len(line.split()) == 2]
print("outcomes: " + " ".join(f"{name}={value}" for name, value in metrics))
# Every verification is signed correctly, fresh and from an allowed address, and every event
# is well formed: a refusal of either is a fault of the service under load.
refused = sum(float(v) for n, v in metrics if n.startswith("portcullis_verify_total") and 'outcome="ok"' not in n)
bad_lines = sum(float(v) for n, v in metrics if n.startswith("portcullis_engine_refused_lines_total"))
log = open(f"{work}/server.log", errors="replace").read()
errors = [l for l in log.splitlines() if re.search(r"ERROR|panicked", l)]
verdict = []
if failed:
    verdict.append(f"{failed} requests failed")
if errors:
    verdict.append(f"{len(errors)} errors in the server's log, first: {errors[0][:200]}")
if refused:
    verdict.append(f"{refused:.0f} verifications refused")
if bad_lines:
    verdict.append(f"{bad_lines:.0f} event lines refused")
verdict += problems
if windows >= 4:
    warm, end = rss[1], rss[-1]
    per_window = (end - warm) / warm * 100 / (windows - 2)
    print(f"resident memory: {rss[0]:.1f} MiB after window 1, {warm:.1f} after window 2, {end:.1f} at the end "
          f"({per_window:+.2f}% a window after warm-up; limit {max_growth}%)")
    if per_window > max_growth:
        verdict.append(f"memory grows {per_window:.2f}% a window")
else:
    print(f"resident memory: {', '.join(f'{r:.1f}' for r in rss)} MiB (too few windows to judge its slope)")
print("verdict: " + ("ok" if not verdict else "FAILED: " + "; ".join(verdict)))
sys.exit(1 if verdict else 0)
PY

#!/usr/bin/env bash
# The analyst console at scale: the queue (GET /console) and the case of a random account
# (GET /console/accounts/{account}) with ACCOUNTS registered customers (default 1,000,000) and
# nine events each in the store (9 M), against GET /healthz of the same server in the same run.
# Target (issue 20): each page under 200 ms of server time.
#
#   scripts/bench-console.sh [seconds per run, default 5]
#   ACCOUNTS=100000 scripts/bench-console.sh 3        (a quicker look)
#
# The server is scripts/bench-lib.sh's (release build, embedded SQLite, one worker thread on
# core 1, the client on core 0). Every customer is registered through POST /v1/accounts (so
# the audit log holds a million entries, as a real deployment's does) and lives nine events:
# sign-ins from two or three IPs and a device or two, API use, a deposit, an address and a
# withdrawal; one in five hundred is called by a crew, widens a key during the call and
# drains to a wallet the crew shares, so the queue holds what the engine held and the alerts
# it raised. Everything goes in through the API, so the store is the one the service builds.
# An analyst's console session is written straight into the store (the passkey ceremony is
# the browser tests' business); the pages are then read at one connection, so the latency is
# the page's and not a queue's.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
accounts="${ACCOUNTS:-1000000}"
source scripts/bench-lib.sh
connections=1
export PORTCULLIS_REQUEST_TIMEOUT_MS=600000

created=$("$bin" operators create --name bench-analyst --role analyst)
analyst_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["operator"]["id"])' "$created")
start_server

echo "generating $accounts customers and their events"
python3 - "$work" "$accounts" <<'PY'
import datetime, json, random, sys, time
work, accounts = sys.argv[1], int(sys.argv[2])
rng = random.Random(20)
t0 = (int(time.time()) - 3 * 86_400) * 1000
def ts(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
dump = lambda e: json.dumps(e, separators=(",", ":"))
crew_wallets = [f"0xc{n:039x}" for n in range(20)]
crew_ips = [f"45.77.1.{n}" for n in range(20)]
with open(f"{work}/accounts.txt", "w") as out:
    for n in range(accounts):
        out.write(dump({"id": f"acc{n:07}", "email": f"c{n}@example.com"}) + "\n")
batch, part, event = [], 0, 0
def emit(e):
    global event
    event += 1
    e["id"] = f"e{event}"
    batch.append(dump(e))
def flush():
    global batch, part
    with open(f"{work}/batch{part:05}.jsonl", "w") as out:
        out.write("\n".join(batch) + "\n")
    batch, part = [], part + 1
for n in range(accounts):
    account, at = f"acc{n:07}", t0 + n * 200
    ips = [f"81.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(rng.choice((2, 3)))]
    devices = [f"dev-{n}-{d}" for d in range(rng.choice((1, 2)))]
    key = f"k{n}"
    for s in range(3):
        emit({"ts": ts(at + s * 60_000), "type": "login", "account": account, "method": "password", "success": True,
              "ctx": {"ip": rng.choice(ips), "device_id": rng.choice(devices), "channel": "app"}})
    for s in range(3):
        emit({"ts": ts(at + 300_000 + s * 60_000), "type": "api_key.used", "account": account, "key_id": key,
              "endpoint": "POST /api/v3/order", "count": rng.randrange(1, 500), "window_s": 3600, "ctx": {"ip": ips[0], "channel": "api"}})
    usd = round(rng.uniform(50, 5000), 2)
    emit({"ts": ts(at + 600_000), "type": "deposit", "account": account, "asset": "USDT",
          "amount": f"{usd}", "amount_usd": usd})
    scam = rng.random() < 0.002
    address = rng.choice(crew_wallets) if scam else f"T{rng.getrandbits(120):030x}"
    ctx = {"ip": rng.choice(crew_ips) if scam else ips[0], "device_id": devices[0], "channel": "app", "call_active": scam}
    emit({"ts": ts(at + 700_000), "type": "address.added", "account": account, "address": address, "asset": "USDT",
          "network": "TRX", "step_up": "totp", "ctx": ctx})
    amount = round(usd * (0.9 if scam else rng.uniform(0.05, 0.3)), 2)
    emit({"ts": ts(at + 900_000), "type": "withdrawal.requested", "account": account, "withdrawal_id": f"w{n}",
          "asset": "USDT", "network": "TRX", "address": address, "amount": f"{amount}", "amount_usd": amount, "ctx": ctx})
    if len(batch) >= 10_000:
        flush()
if batch:
    flush()
cases = [f"/console/accounts/acc{rng.randrange(accounts):07}" for _ in range(20_000)]
open(f"{work}/cases.txt", "w").write("\n".join(cases) + "\n")
print(f"{event:,} events in {part} batches")
PY

started=$(date +%s)
# Each account once, in order.
cat >"$work/accounts.lua" <<LUA
local bodies, count, i = {}, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer $token"
  for line in io.lines("$work/accounts.txt") do
    count = count + 1
    bodies[count] = wrk.format(nil, "/v1/accounts", nil, line)
  end
end
function request()
  i = i % count + 1
  return bodies[i]
end
LUA
# wrk runs for its whole duration whatever the script does: it is stopped once the last
# account is in (the eight requests still in flight then are a few accounts at most).
taskset -c "$client_core" wrk -t1 -c8 -d3600s -s "$work/accounts.lua" "http://127.0.0.1:$port/" >"$work/accounts.out" &
loader=$!
last="acc$(printf %07d $((accounts - 1)))"
until curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/accounts/$last"; do sleep 1; done
sleep 1
kill "$loader" 2>/dev/null || true
wait "$loader" 2>/dev/null || true
echo "registered $accounts accounts in $(($(date +%s) - started)) s"
started=$(date +%s)
ingest_batches bench-console
echo "ingested in $(($(date +%s) - started)) s; server RSS $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$server/status"); database $(du -sh "$work/data" | cut -f1)"

# An analyst's console session, as a passkey sign-in would leave it.
cookie=$(python3 - "$work/data/portcullis.db" "$analyst_id" <<'PY'
import hashlib, secrets, sqlite3, sys, time
db, operator = sys.argv[1], sys.argv[2]
token = "pcs_" + secrets.token_urlsafe(32)
now = int(time.time() * 1000)
with sqlite3.connect(db, timeout=30) as conn:
    conn.execute("INSERT INTO operator_sessions (token_hash, operator, created_at, last_seen_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)",
                 (hashlib.sha256(token.encode()).hexdigest(), operator, now, now, now + 8 * 3600 * 1000))
print(token)
PY
)
queue_items=$(curl -s -H "Cookie: pc_console=$cookie" "http://127.0.0.1:$port/console" | grep -c 'class="item"' || true)
echo "the queue shows $queue_items items"

cat >"$work/pages.lua" <<LUA
local paths, count, i = {}, 0, 0
function init(args)
  wrk.headers["Cookie"] = "pc_console=$cookie"
  for line in io.lines(args[1]) do
    count = count + 1
    paths[count] = wrk.format("GET", line)
  end
end
function request()
  i = i % count + 1
  return paths[i]
end
LUA
echo "/console" >"$work/queue.txt"
for round in $(seq 1 "$rounds"); do
  measured "http://127.0.0.1:$port/healthz" >"$work/healthz$round.txt"
  measured -s "$work/pages.lua" "http://127.0.0.1:$port/" "$work/queue.txt" >"$work/queue$round.txt"
  measured -s "$work/pages.lua" "http://127.0.0.1:$port/" "$work/cases.txt" >"$work/case$round.txt"
done

python3 - "$work" "$rounds" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts")
from bench_figures import figures
work, rounds = sys.argv[1], int(sys.argv[2])
worst = {"queue": [], "case": []}
for n in range(1, rounds + 1):
    h = figures(f"{work}/healthz{n}.txt")
    line = f"round {n}: healthz p99 {h.p99_ms:.2f} ms"
    for page in ("queue", "case"):
        f = figures(f"{work}/{page}{n}.txt")
        worst[page].append(f.p99_ms)
        line += f" | {page} {f.rate:,.0f} pages/s p50 {f.p50_ms:.1f} ms p99 {f.p99_ms:.1f} ms, non-2xx {f.errors}, server CPU {f.cpu_us / 1000:.1f} ms per page"
    print(line)
print("median p99: " + ", ".join(f"{page} {statistics.median(v):.1f} ms" for page, v in worst.items()) + " (target: under 200 ms)")
PY

#!/usr/bin/env bash
# The entity graph over HTTP: GET /v1/graph/{kind}/{value}?hops=2 on a graph of ACCOUNTS
# accounts (default 1,000,000), against GET /healthz of the same server in the same run.
#
#   scripts/bench-graph.sh [seconds per run, default 5]
#   ACCOUNTS=100000 scripts/bench-graph.sh 3        (a quicker look)
#   CHECKPOINT_S=3 scripts/bench-graph.sh 10         (every graph round overlaps a checkpoint)
#
# CHECKPOINT_S sets the engine's checkpoint timer (`risk_checkpoint_interval_s`, 60 s by
# default) and sends one event just before each graph round, so that a checkpoint of the whole
# graph is due at the timer's next tick, inside the round when CHECKPOINT_S is shorter than the
# round; the checkpoints written during each round are reported beside it. Without it, the one
# checkpoint after the load falls wherever the minute's tick does (in one round, or none).
#
# The server is scripts/bench-lib.sh's (release build, embedded SQLite, one worker thread on
# core 1, the client on core 0). The history is generated here, deterministically: every
# account roams (2-4 sign-ins from IPs mostly shared by two or three accounts, now and then a
# VPN exit or a bot host shared by thousands), uses one or two devices, and adds one or two
# withdrawal addresses (a few are an exchange's deposit addresses, shared by thousands). It goes
# in through POST /v1/events, so the graph is the one the service builds. The queries ask for
# random accounts, IPs, devices and addresses (each once per round): the cold case, not one hot
# node. Latency is measured at 4 connections (a few analysts' consoles and scripts at once), so
# the p99 is the query's and not a queue's.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
accounts="${ACCOUNTS:-1000000}"
source scripts/bench-lib.sh
connections=4
# A batch of the bulk load can outlast the default 10 s while the engine writes a checkpoint
# of a million accounts.
export PORTCULLIS_REQUEST_TIMEOUT_MS=600000
checkpoint_s="${CHECKPOINT_S:-}"
if [ -n "$checkpoint_s" ]; then export PORTCULLIS_RISK_CHECKPOINT_INTERVAL_S="$checkpoint_s"; fi

analyst=$("$bin" operators create --name bench-analyst --role analyst |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
start_server

echo "generating the history of $accounts accounts"
python3 - "$work" "$accounts" <<'PY'
import json, random, sys
work, accounts = sys.argv[1], int(sys.argv[2])
rng = random.Random(18)
import time
t0 = (int(time.time()) - 86_400) * 1000  # yesterday: the graph keeps what is recent
def ts(ms):
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
homes = max(accounts // 2, 1)
vpn = [f"185.220.101.{n}" for n in range(64)]
bots = [f"45.77.0.{n}" for n in range(16)]
deposit = [f"0x{n:040x}" for n in range(1, 33)]
lines, queries = [], {"account": [], "ip": [], "device": [], "address": []}
batch, part = [], 0
def flush():
    global batch, part
    with open(f"{work}/batch{part:05}.jsonl", "w") as out:
        out.write("\n".join(batch) + "\n")
    batch, part = [], part + 1
event = 0
for n in range(accounts):
    account = f"acc{n:07}"
    at = t0 + n * 37
    devices = [f"dev-{n}-{d}" for d in range(rng.choice((1, 1, 2)))]
    for s in range(rng.choice((2, 3, 4))):
        roll = rng.random()
        if roll < 0.05:
            ip = rng.choice(vpn)
        elif roll < 0.07:
            ip = rng.choice(bots)
        else:
            home = rng.randrange(homes)
            ip = f"81.{home // 65536}.{home // 256 % 256}.{home % 256}"
        event += 1
        batch.append(json.dumps({"id": f"e{event}", "ts": ts(at + s * 1000), "type": "login", "account": account,
            "method": "password", "success": True, "ctx": {"ip": ip, "device_id": rng.choice(devices)}}, separators=(",", ":")))
    for a in range(rng.choice((1, 1, 2))):
        address = rng.choice(deposit) if rng.random() < 0.03 else f"0x{rng.getrandbits(160):040x}"
        event += 1
        batch.append(json.dumps({"id": f"e{event}", "ts": ts(at + 10_000 + a), "type": "address.added", "account": account,
            "address": address, "asset": "USDT", "network": "ETH", "step_up": "passkey",
            "ctx": {"ip": ip, "device_id": devices[0]}}, separators=(",", ":")))
    if rng.random() < 0.02:
        queries["account"].append(account); queries["ip"].append(ip)
        queries["device"].append(devices[0]); queries["address"].append(address)
    if len(batch) >= 10_000:
        flush()
if batch:
    flush()
paths = [f"/v1/graph/{kind}/{value}?hops=2" for kind, values in queries.items() for value in values]
rng.shuffle(paths)
open(f"{work}/paths.txt", "w").write("\n".join(paths) + "\n")
print(f"{event:,} events in {part} batches, {len(paths):,} query paths")
PY

started=$(date +%s)
ingest_batches bench-graph
echo "ingested in $(($(date +%s) - started)) s; server RSS $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$server/status")"

cp "$work/paths.txt" "$work/bodies.txt"
write_wrk_script "$work/graph.lua" GET "$analyst"

# One sample answer per kind, to show what a query returns.
for kind in account ip device address; do
  path=$(grep -m1 "/v1/graph/$kind/" "$work/paths.txt")
  curl -sf -H "Authorization: Bearer $analyst" "http://127.0.0.1:$port$path" | python3 -c "
import json, sys
view = json.load(sys.stdin)
print(f'sample $kind: {len(view[\"nodes\"])} nodes, {len(view[\"edges\"])} edges, truncated {view[\"truncated\"]}')"
done

written() { metrics_matching '^portcullis_engine_checkpoints_written_total' | awk '{ n = $2 } END { print n + 0 }'; }
for round in $(seq 1 "$rounds"); do
  measured "http://127.0.0.1:$port/healthz" >"$work/healthz$round.txt"
  if [ -n "$checkpoint_s" ]; then
    # One applied event: the next tick of the timer writes a checkpoint, during this round.
    printf '{"id":"nudge-%s","ts":"%s","type":"login","account":"acc0000000","method":"password","success":true,"ctx":{"ip":"192.0.2.1"}}\n' \
      "$round" "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" >"$work/nudge.jsonl"
    curl -sf -o /dev/null -H "Authorization: Bearer $token" -H "Content-Type: application/x-ndjson" \
      --data-binary "@$work/nudge.jsonl" "http://127.0.0.1:$port/v1/events"
  fi
  before=$(written)
  measured -s "$work/graph.lua" "http://127.0.0.1:$port/" >"$work/graph$round.txt"
  echo "checkpoints written: $(($(written) - before))" >>"$work/graph$round.txt"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/graph$round.txt"
done

python3 - "$work" "$rounds" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts")
from bench_figures import figures
work, rounds = sys.argv[1], int(sys.argv[2])
p99s, ratios = [], []
for n in range(1, rounds + 1):
    h, g = figures(f"{work}/healthz{n}.txt"), figures(f"{work}/graph{n}.txt")
    p99s.append(g.p99_ms); ratios.append(g.cpu_us / h.cpu_us)
    noted = dict(l.strip().split(": ", 1) for l in open(f"{work}/graph{n}.txt") if l.startswith(("checkpoints written:", "load average:")))
    print(f"round {n}: checkpoints written during the graph run {noted.get('checkpoints written', '?')}; "
          f"load average {noted.get('load average', '?')} at its end")
    print(f"round {n}: healthz {h.rate:,.0f} req/s p99 {h.p99_ms:.2f} ms | graph hops=2 {g.rate:,.0f} req/s p99 {g.p99_ms:.2f} ms, non-2xx {g.errors}"
          f" | server CPU per request: healthz {h.cpu_us:.1f} us, graph {g.cpu_us:.1f} us")
print(f"median graph p99: {statistics.median(p99s):.2f} ms (target <= 5 ms)   median server CPU per query: {statistics.median(ratios):.1f}x a healthz request")
PY

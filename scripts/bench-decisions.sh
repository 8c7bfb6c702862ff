#!/usr/bin/env bash
# Decision API benchmark: POST /v1/decisions against GET /healthz of the same server, measured
# in the same run, three alternating rounds; prints each round and the medians. Each round has
# three parts:
#   - GET /healthz with wrk (64 connections, as fast as it answers): the trivial baseline;
#   - POST /v1/decisions with wrk, the same way: the most the server answers (its capacity);
#   - POST /v1/decisions at a fixed 10,000 requests per second (the target's load) from the
#     open-loop generator crates/server/examples/loadgen.rs (up to 64 in flight), whose
#     latencies count from each request's scheduled departure, so a stall cannot hide.
#
#   scripts/bench-decisions.sh [seconds per run, default 5]
#   PORTCULLIS_BENCH_BIN=<path to a portcullis build> scripts/bench-decisions.sh   (compare builds)
#
# As scripts/bench-http.sh: the server (embedded SQLite, one worker thread) is pinned to core 1
# and wrk (one thread) to core 0. Every request is a distinct deciding event (withdrawals, new
# addresses, key changes over 10,000 accounts, ids never repeated across rounds), so each one
# takes the whole path: token check, parsing, the append to the event log, the engine's
# catch-up (features, CEL rules, closed loop), the stored decision, the answer. The engine's
# counters are printed afterwards to show the decisions were made.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
connections=64
rounds=3
server_core=1
client_core=0

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
# PORTCULLIS_BENCH_BIN=<path> runs another build of the service (to compare two builds).
if [ -z "${PORTCULLIS_BENCH_BIN:-}" ]; then cargo build --release -q -p portcullis; fi
cargo build --release -q -p portcullis-server --example loadgen
loadgen="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen"
paced_rate=10000
bin="${PORTCULLIS_BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/portcullis}"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_WORKER_THREADS=1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORTCULLIS_LISTEN="127.0.0.1:$port"

token=$("$bin" operators create --name bench --role integration | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
taskset -c "$server_core" "$bin" serve &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# Distinct deciding events for one round, in time order, as ready-made requests for wrk.
prepare_round() {
  python3 - "$1" "$work/bodies.txt" "$((duration * 25000))" <<'PY'
import json, sys
from datetime import datetime, timedelta, timezone
round_, out, count = int(sys.argv[1]), open(sys.argv[2], "w"), int(sys.argv[3])
start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=round_)
for n in range(count):
    account = n * 7919 % 10000
    ts = (start + timedelta(milliseconds=20 * n)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    ip = f"198.51.{account % 250}.{account // 250 % 250}"
    head = {"id": f"r{round_}e{n}", "ts": ts, "account": f"a{account}", "ctx": {"ip": ip, "device_id": f"d{account}", "channel": "app"}}
    kind = n % 4
    if kind in (0, 1):
        body = {"type": "withdrawal.requested", "withdrawal_id": f"w{round_}_{n}", "asset": "USDT", "network": "TRX",
                "address": f"T{account}_{n % 3}", "amount": "250", "amount_usd": 250.0}
    elif kind == 2:
        body = {"type": "address.added", "address": f"T{account}_{n % 3}", "asset": "USDT", "network": "TRX", "step_up": "passkey"}
    else:
        body = {"type": "api_key.updated", "key_id": f"k{account}", "scopes": ["read", "trade", "withdraw"],
                "ip_allowlist": [f"{ip}/32"], "step_up": "totp"}
    out.write(json.dumps({**head, **body}, separators=(",", ":")) + "\n")
PY
  cat >"$work/decide.lua" <<LUA
local requests, count, i = {}, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer $token"
  -- Formatted once here, so the client spends no Lua time per request.
  for line in io.lines("$work/bodies.txt") do
    count = count + 1
    requests[count] = wrk.format(nil, "/v1/decisions", nil, line)
  end
end
function request()
  i = i % count + 1
  return requests[i]
end
LUA
}

run() { taskset -c "$client_core" wrk -t1 -c"$connections" -d"${duration}s" --latency "$@"; }
# The server's CPU time so far (user + system, in clock ticks), to report CPU per request:
# unlike rates, it hardly depends on what else the machine runs.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
# wrk's output, with the server's CPU ticks spent during the run appended.
measured() {
  local before
  before=$(cpu_ticks)
  run "$@"
  echo "server cpu ticks: $(($(cpu_ticks) - before)) per $(getconf CLK_TCK)/s"
}
for round in $(seq 1 "$rounds"); do
  measured "http://127.0.0.1:$port/healthz" >"$work/healthz$round.txt"
  prepare_round "$round"
  measured -s "$work/decide.lua" "http://127.0.0.1:$port/v1/decisions" >"$work/decide$round.txt"
  # Fresh events (their own round number, so no id repeats) for the paced part.
  prepare_round "$((round + 100))"
  taskset -c "$client_core" "$loadgen" --url "http://127.0.0.1:$port/v1/decisions" --token "$token" \
    --bodies "$work/bodies.txt" --rate "$paced_rate" --connections "$connections" --seconds "$duration" \
    >"$work/paced$round.txt"
done
metrics=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" | grep -E '^portcullis_(engine_events_total|engine_duplicates_total|decisions_total|decision_group)' | tr '\n' ' ')

python3 - "$work" "$rounds" "$metrics" <<'PY'
import re, statistics, sys
work, rounds, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def figures(path):
    text = open(path).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    ticks, per_second = map(int, re.search(r"server cpu ticks: (\d+) per (\d+)", text).groups())
    cpu_us = ticks / per_second * 1e6 / requests
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], int(errors.group(1)) if errors else 0, cpu_us
def paced(path):
    text = open(path).read()
    found = dict(re.findall(r"(\S+) ([\d.]+)", text.replace("/s", "")))
    return float(found["rate"]), float(found["p50"]), float(found["p99"]), int(found["failed"])
rates, paced_p99s, paced_rates, cpu = [], [], [], []
for n in range(1, rounds + 1):
    (h_rate, h_p99, _, h_cpu), (d_rate, d_p99, d_err, d_cpu) = figures(f"{work}/healthz{n}.txt"), figures(f"{work}/decide{n}.txt")
    cpu.append((d_cpu, d_cpu / h_cpu))
    p_rate, p_p50, p_p99, p_failed = paced(f"{work}/paced{n}.txt")
    rates.append((d_rate, d_rate / h_rate)); paced_p99s.append(p_p99); paced_rates.append(p_rate)
    print(f"round {n}: healthz {h_rate:,.0f} req/s p99 {h_p99:.2f} ms | decisions flat out {d_rate:,.0f} req/s p99 {d_p99:.2f} ms, non-2xx {d_err} (ratio {d_rate / h_rate:.2f})"
          f" | decisions at {p_rate:,.0f} req/s: p50 {p_p50:.2f} ms p99 {p_p99:.2f} ms, failed {p_failed}"
          f" | server CPU per request: healthz {h_cpu:.1f} us, decision {d_cpu:.1f} us")
print(f"engine counters: {metrics}")
median_rate = statistics.median(r for r, _ in rates)
print(f"median capacity: {median_rate:,.0f} decisions/s ({statistics.median(q for _, q in rates):.2f} of healthz)   "
      f"at {statistics.median(paced_rates):,.0f} req/s: median p99 {statistics.median(paced_p99s):.2f} ms   (targets: 10,000 req/s with p99 <= 5 ms)")
print(f"median server CPU per decision: {statistics.median(c for c, _ in cpu):.1f} us ({statistics.median(q for _, q in cpu):.1f}x a healthz request)")
PY

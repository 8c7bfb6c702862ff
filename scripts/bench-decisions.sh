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
# The server setup is scripts/bench-lib.sh's (embedded SQLite, one worker thread pinned to core
# 1, every client on core 0). Every request is a distinct deciding event (withdrawals, new
# addresses, key changes over 10,000 accounts, ids never repeated across rounds), so each one
# takes the whole path: token check, parsing, the append to the event log, the engine's
# catch-up (features, CEL rules, closed loop), the stored decision, the answer. The engine's
# counters are printed afterwards to show the decisions were made.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
source scripts/bench-lib.sh
cargo build --release -q -p portcullis-server --example loadgen
loadgen="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/loadgen"
paced_rate=10000
start_server

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
  write_wrk_script "$work/decide.lua" /v1/decisions
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
metrics=$(metrics_matching '^portcullis_(engine_events_total|engine_duplicates_total|decisions_total|decision_group)')

python3 - "$work" "$rounds" "$metrics" <<'PY'
import re, statistics, sys
sys.path.insert(0, "scripts")
from bench_figures import figures, loadgen
work, rounds, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def paced(path):
    found = loadgen(path)
    return found["rate"], found["p50"], found["p99"], int(found["failed"])
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

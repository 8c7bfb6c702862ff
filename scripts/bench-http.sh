#!/usr/bin/env bash
# HTTP benchmark: POST /v1/verify against GET /healthz of the same server, measured in the same
# run with wrk (64 connections), three alternating rounds; prints each round and the medians.
#
#   scripts/bench-http.sh [seconds per run, default 5]
#   PORTCULLIS_BENCH_BIN=<path to a portcullis build> scripts/bench-http.sh   (compare builds)
#
# The server setup is scripts/bench-lib.sh's (one worker thread pinned to core 1, wrk on core
# 0). Every verification request is distinct (pre-signed with the key's real secret), so the
# server runs the whole path: token check, JSON parsing, lookup, window, HMAC, replay guard,
# allow-list, scope, response.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
source scripts/bench-lib.sh

"$bin" accounts create acc_bench >/dev/null
for round in $(seq 1 "$rounds"); do
  "$bin" keys create --account acc_bench --scope read,trade --ip 127.0.0.0/8 >"$work/key$round.json"
done
start_server

# Distinct signed requests for one round, as ready-made HTTP requests for wrk.
prepare_round() {
  python3 - "$work/key$1.json" "$work/bodies.txt" "$((duration * 150000))" <<'PY'
import hashlib, hmac, json, sys, time
key = json.load(open(sys.argv[1]))
api_key, secret = key["key"]["api_key"], key["secret"].encode()
now = int(time.time() * 1000)
with open(sys.argv[2], "w") as out:
    for n in range(int(sys.argv[3])):
        payload = f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.0125&price=97123.45&newClientOrderId=b{n}&recvWindow=60000&timestamp={now}"
        signature = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
        out.write(json.dumps({"api_key": api_key, "signature": signature, "payload": payload, "ip": "127.0.0.1", "scope": "trade"}) + "\n")
PY
  write_wrk_script "$work/verify.lua" /v1/verify
}

for round in $(seq 1 "$rounds"); do
  measured "http://127.0.0.1:$port/healthz" >"$work/healthz$round.txt"
  prepare_round "$round"
  measured -s "$work/verify.lua" "http://127.0.0.1:$port/v1/verify" >"$work/verify$round.txt"
done
metrics=$(metrics_matching '^portcullis_verify_total')

python3 - "$work" "$rounds" "$metrics" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts")
from bench_figures import figures
work, rounds, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ratios, p99s, cpu = [], [], []
for n in range(1, rounds + 1):
    h, v = figures(f"{work}/healthz{n}.txt"), figures(f"{work}/verify{n}.txt")
    ratios.append(v.rate / h.rate); p99s.append(v.p99_ms); cpu.append(v.cpu_us / h.cpu_us)
    print(f"round {n}: healthz {h.rate:,.0f} req/s p99 {h.p99_ms:.2f} ms | verify {v.rate:,.0f} req/s p99 {v.p99_ms:.2f} ms, non-2xx {v.errors} | ratio {v.rate / h.rate:.2f}"
          f" | server CPU per request: healthz {h.cpu_us:.1f} us, verify {v.cpu_us:.1f} us")
print(f"verifier counters: {metrics}")
print(f"median ratio verify/healthz: {statistics.median(ratios):.2f}   median verify p99: {statistics.median(p99s):.2f} ms   (targets: >= 0.70, <= 2 ms)")
print(f"median server CPU per verification: {statistics.median(cpu):.2f}x a healthz request")
PY

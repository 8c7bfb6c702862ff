#!/usr/bin/env bash
# HTTP benchmark: POST /v1/verify against GET /healthz of the same server, measured in the same
# run with wrk (64 connections), three alternating rounds; prints each round and the medians.
#
#   scripts/bench-http.sh [seconds per run, default 5]
#
# The server runs one worker thread pinned to core 1 and wrk one thread pinned to core 0, so
# the figures measure the server rather than the scheduler's fight between the two. Every
# verification request is distinct (pre-signed with the key's real secret), so the server runs
# the whole path: token check, JSON parsing, lookup, window, HMAC, replay guard, allow-list,
# scope, response.
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
cargo build --release -q -p portcullis
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/portcullis"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_WORKER_THREADS=1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORTCULLIS_LISTEN="127.0.0.1:$port"

token=$("$bin" operators create --name bench --role integration | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" accounts create acc_bench >/dev/null
for round in $(seq 1 "$rounds"); do
  "$bin" keys create --account acc_bench --scope read,trade --ip 127.0.0.0/8 >"$work/key$round.json"
done
taskset -c "$server_core" "$bin" serve &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

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
  cat >"$work/verify.lua" <<LUA
local requests, count, i = {}, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer $token"
  -- Formatted once here, so the client spends no Lua time per request.
  for line in io.lines("$work/bodies.txt") do
    count = count + 1
    requests[count] = wrk.format(nil, "/v1/verify", nil, line)
  end
end
function request()
  i = i % count + 1
  return requests[i]
end
LUA
}

run() { taskset -c "$client_core" wrk -t1 -c"$connections" -d"${duration}s" --latency "$@"; }
for round in $(seq 1 "$rounds"); do
  run "http://127.0.0.1:$port/healthz" >"$work/healthz$round.txt"
  prepare_round "$round"
  run -s "$work/verify.lua" "http://127.0.0.1:$port/v1/verify" >"$work/verify$round.txt"
done
metrics=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" | grep -E '^portcullis_verify_total' | tr '\n' ' ')

python3 - "$work" "$rounds" "$metrics" <<'PY'
import re, statistics, sys
work, rounds, metrics = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def figures(path):
    text = open(path).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], int(errors.group(1)) if errors else 0
ratios, p99s = [], []
for n in range(1, rounds + 1):
    (h_rate, h_p99, _), (v_rate, v_p99, v_err) = figures(f"{work}/healthz{n}.txt"), figures(f"{work}/verify{n}.txt")
    ratios.append(v_rate / h_rate); p99s.append(v_p99)
    print(f"round {n}: healthz {h_rate:,.0f} req/s p99 {h_p99:.2f} ms | verify {v_rate:,.0f} req/s p99 {v_p99:.2f} ms, non-2xx {v_err} | ratio {v_rate / h_rate:.2f}")
print(f"verifier counters: {metrics}")
print(f"median ratio verify/healthz: {statistics.median(ratios):.2f}   median verify p99: {statistics.median(p99s):.2f} ms   (targets: >= 0.70, <= 2 ms)")
PY

#!/usr/bin/env bash
# Soak: does the server's memory stay flat under sustained load when nobody scrapes /metrics?
# Drives POST /v1/verify with wrk for a while, twice in one run: once never reading /metrics
# (the case that used to grow ~20 bytes a request, because the Prometheus recorder's upkeep ran
# only on a scrape), once reading it every 5 s (the baseline: upkeep on every scrape). Samples
# the server's resident memory every 5 s and prints, per run, its growth from the end of the
# first quarter (the allocator warmed up) to the end, per request served in that time.
#
#   scripts/bench-soak.sh [seconds per run, default 60]
#   PORTCULLIS_BENCH_BIN=<path to a portcullis build> scripts/bench-soak.sh   (compare builds)
#
# The server setup is scripts/bench-lib.sh's. The requests cycle through 300,000 distinct signed
# verifications, so after the first pass most are refused as replays: every request still
# passes through the metrics layer, which is what is measured. Long runs (an hour) are the soak
# proper; keep them off a shared machine's busy hours.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
source scripts/bench-lib.sh
rounds=1

"$bin" accounts create acc_soak >/dev/null
"$bin" keys create --account acc_soak --scope read,trade --ip 127.0.0.0/8 >"$work/key.json"
start_server
python3 - "$work/key.json" "$work/bodies.txt" 300000 <<'PY'
import hashlib, hmac, json, sys, time
key = json.load(open(sys.argv[1]))
api_key, secret = key["key"]["api_key"], key["secret"].encode()
now = int(time.time() * 1000)
with open(sys.argv[2], "w") as out:
    for n in range(int(sys.argv[3])):
        payload = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.0125&price=97123.45&newClientOrderId=s{n}&recvWindow=60000&timestamp={now}"
        signature = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
        out.write(json.dumps({"api_key": api_key, "signature": signature, "payload": payload, "ip": "127.0.0.1", "scope": "trade"}) + "\n")
PY
write_wrk_script "$work/verify.lua" /v1/verify

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$server/status"; }

# One run: wrk in the background, RSS sampled every 5 s, /metrics read meanwhile if $2 = scrape.
soak() {
  local name=$1 scrape=$2 samples="$work/$1.rss"
  : >"$samples"
  measured -s "$work/verify.lua" "http://127.0.0.1:$port/v1/verify" >"$work/$name.txt" &
  local client=$! elapsed=0
  while kill -0 "$client" 2>/dev/null && [ "$elapsed" -lt "$((duration + 10))" ]; do
    echo "$elapsed $(rss_kib)" >>"$samples"
    [ "$scrape" = scrape ] && metrics_matching '^portcullis_verify_total' >/dev/null
    sleep 5
    elapsed=$((elapsed + 5))
  done
  wait "$client"
  echo "$elapsed $(rss_kib)" >>"$samples"
}

soak unscraped none
soak scraped scrape

python3 - "$work" "$duration" <<'PY'
import sys
sys.path.insert(0, "scripts")
from bench_figures import figures
work, duration = sys.argv[1], int(sys.argv[2])
for name in ("unscraped", "scraped"):
    samples = [tuple(map(int, line.split())) for line in open(f"{work}/{name}.rss") if line.strip()]
    run = figures(f"{work}/{name}.txt")
    quarter = next(kib for t, kib in samples if t >= duration // 4)
    end = samples[-1][1]
    served = run.rate * duration * 0.75
    per_request = (end - quarter) * 1024 / served if served else float("nan")
    print(f"{name}: {run.rate:,.0f} req/s, RSS {samples[0][1] / 1024:.1f} -> {quarter / 1024:.1f} (quarter) -> {end / 1024:.1f} MiB;"
          f" growth after the first quarter {per_request:+.2f} bytes per request")
    print("  samples (s: MiB): " + ", ".join(f"{t}: {kib / 1024:.1f}" for t, kib in samples))
print("a leak of the kind fixed shows as about +20 bytes per request unscraped and ~0 scraped")
PY

#!/usr/bin/env bash
# `portcullis contacts verify --file` throughput, whole command (start, registry fetch and
# compile, every line verified and written): a fresh local store with 50 official domains
# (MetaMask's fuzzy list and allowlist, ../shared/data/eth-phishing-detect-1.2.0), and a file
# of N values (default 1,000,000) cycling through MetaMask's blocklist, phone numbers in mixed
# notations and handles. Prints values per second. docs/benchmarks.md.
#
#   scripts/bench-contacts-file.sh [N]           # uses target/release/portcullis
#   PORTCULLIS_BENCH_BIN=target/debug/portcullis scripts/bench-contacts-file.sh 2000   # a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
BIN=${PORTCULLIS_BENCH_BIN:-target/release/portcullis}
DATA=../shared/data/eth-phishing-detect-1.2.0/config.json
[ -x "$BIN" ] || cargo build --release --locked -q -p portcullis
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn
python3 - "$DATA" "$N" "$work" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
n, work = int(sys.argv[2]), sys.argv[3]
official = (config["fuzzylist"] + config["whitelist"])[:50]
open(f"{work}/official.txt", "w").write("\n".join(official) + "\n")
pool = config["blacklist"] + [f"+44 20 7946 {i:04d}" for i in range(2000)] + [f"@support_{i}" for i in range(2000)]
with open(f"{work}/values.txt", "w") as out:
    for i in range(n):
        out.write(pool[i % len(pool)] + "\n")
PY
while read -r domain; do
  "$BIN" contacts official add --kind domain --value "$domain" >/dev/null 2>&1 || true
done < "$work/official.txt"
start=$(date +%s.%N)
"$BIN" contacts verify --file "$work/values.txt" > "$work/answers.jsonl"
end=$(date +%s.%N)
lines=$(wc -l < "$work/answers.jsonl")
[ "$lines" -eq "$N" ] || { echo "expected $N answers, got $lines" >&2; exit 1; }
python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); print(f'{n} values in {s:.2f} s: {n / s:,.0f} values/s (target 100,000)')" "$N" "$(echo "$end - $start" | bc)"

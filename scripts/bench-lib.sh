# Shared by the HTTP benchmarks (bench-http.sh, bench-decisions.sh); sourced, not run.
#
# Sets up one server for a benchmark: a release build of `portcullis serve` (or the build in
# PORTCULLIS_BENCH_BIN, to compare two), embedded SQLite in a scratch data directory, one worker
# thread, pinned to core 1 while every client is pinned to core 0, so the figures measure the
# server rather than the scheduler's fight between the two. The caller sets `duration` first.
connections=64
rounds=3
server_core=1
client_core=0

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${PORTCULLIS_BENCH_BIN:-}" ]; then cargo build --release -q -p portcullis; fi
bin="${PORTCULLIS_BENCH_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/portcullis}"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export PORTCULLIS_DATA_DIR="$work/data" PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_WORKER_THREADS=1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PORTCULLIS_LISTEN="127.0.0.1:$port"
token=$("$bin" operators create --name bench --role integration | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

start_server() {
  taskset -c "$server_core" "$bin" serve &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
}

# A wrk script written to $1 that sends each line of $work/bodies.txt in turn: as the body of
# a POST to the path $2, or, with $2 = GET, as the path of a GET. $3: the bearer token (the
# benchmark operator's by default).
write_wrk_script() {
  local format="wrk.format(nil, \"$2\", nil, line)"
  if [ "$2" = GET ]; then format='wrk.format("GET", line)'; fi
  cat >"$1" <<LUA
local requests, count, i = {}, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer ${3:-$token}"
  -- Formatted once here, so the client spends no Lua time per request.
  for line in io.lines("$work/bodies.txt") do
    count = count + 1
    requests[count] = $format
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
# wrk's output, with the server's CPU ticks spent during the run appended (read by
# scripts/bench_figures.py).
measured() {
  local before
  before=$(cpu_ticks)
  run "$@"
  echo "server cpu ticks: $(($(cpu_ticks) - before)) per $(getconf CLK_TCK)/s"
}

# The metrics whose names match the pattern $1, on one line.
metrics_matching() {
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/metrics" | grep -E "$1" | tr '\n' ' '
}

# Sends every $work/batch*.jsonl to POST /v1/events (the benchmark operator's token), removing
# each once it is in; stops the benchmark at the first refusal. $1 names the caller in errors.
ingest_batches() {
  local file status
  for file in "$work"/batch*.jsonl; do
    status=$(curl -s -o "$work/reply.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
      -H "Content-Type: application/x-ndjson" --data-binary "@$file" "http://127.0.0.1:$port/v1/events")
    if [ "$status" != 200 ]; then
      echo "$1: $file answered $status: $(head -c 500 "$work/reply.json")" >&2
      exit 1
    fi
    rm -f "$file"
  done
}

#!/usr/bin/env bash
# One partition owner's speed (issue 21, "Speed"): events per second from JetStream to stored
# decisions, for one `portcullis serve` process (release build) that owns every partition, on
# a fresh PostgreSQL database and a fresh stream that already holds the whole feed (published
# before the process starts, so the figure is the owner's, not the publisher's). The clock runs
# from the process's first "partition taken" line to the moment every decision is stored (the
# owner's figure), and on to the moment every event is in the event log (which trails the
# decisions: crates/app/src/partitions/committer.rs). Beside it, in the same run: `portcullis replay` of the same
# file (one process, no database, no stream), the baseline the ratio is against.
#
# Each partition count is run in turn; every run's exported decisions must equal the replay's
# byte for byte (cmp), so a fast wrong answer cannot pass.
#
#   scripts/bench-partition-owner.sh [accounts, default 5000] [days, default 14] [partition counts, default "1 4"]
#   PORTCULLIS_BENCH_BIN=/path/to/portcullis scripts/bench-partition-owner.sh ...   (another build, e.g. the
#   commit before, for a ratio in one sitting; nothing is built then)
#   PORTCULLIS_BENCH_KEEP=1 ...   keeps the feed and the processes' logs (the path is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-5000}"
days="${2:-14}"
counts="${3:-1 4}"
source scripts/partitions-lib.sh
# A query to the session the run's polls go to (`coproc WATCH`).
ask() {
  echo "$1;" >&"${WATCH[1]}"
  local answer
  read -r answer <&"${WATCH[0]}"
  echo "$answer"
}
simulated_feed "$accounts" "$days"
echo "feed: $events events, $deciding decisions; portcullis replay (one process, the baseline): ${replay_s} s ($(python3 -c "print(round($events / $replay_s))") events/s)"

for count in $counts; do
  fresh_deployment "owner_p$count" "$count"
  # A first start makes the streams (and takes the partitions); it stops before the feed goes in.
  "$bin" serve 2>"$work/p$count-first.log" >/dev/null &
  node=$!
  pids+=($node)
  until grep -qs '"partition taken"' "$work/p$count-first.log"; do sleep 0.05; done
  kill "$node"
  wait "$node" 2>/dev/null || true
  # Until its heartbeat is over (at once since a leaving process ends it; a build before that
  # waits for the lapse), so the owner takes every partition at its first tick.
  until [ "$(sql "$url" "SELECT COUNT(*) FROM partition_nodes WHERE expires_at > $(date +%s%3N)")" = 0 ]; do
    sleep 0.1
  done
  "$bin" publish "$feed" --partitions "$count" --subject-prefix "$prefix" --nats-url "$nats_url" \
    2>"$work/p$count-publish.log"
  # One psql session answers the polls (a psql started for each poll would take a share of the
  # two cores from the run it measures).
  coproc WATCH { psql -qtA "$url"; }
  pids+=($WATCH_PID)
  "$bin" serve 2>"$work/p$count.log" >/dev/null &
  node=$!
  pids+=($node)
  until [ "$(ask "SELECT COUNT(*) FROM decisions")" -ge "$deciding" ]; do sleep 0.02; done
  decided_at=$(now)
  until [ "$(ask "SELECT COUNT(*) FROM events")" -ge "$events" ]; do sleep 0.02; done
  done_at=$(now)
  kill "$WATCH_PID"
  wait "$WATCH_PID" 2>/dev/null || true
  cpu=$(ps -o times= -p "$node" | tr -d ' ')
  kill "$node"
  wait "$node" 2>/dev/null || true
  "$bin" decisions export --events "$feed" --out "$work/p$count-exported.jsonl" 2>/dev/null
  cmp "$work/p$count-exported.jsonl" "$work/replayed.jsonl"
  python3 - "$count" "$work/p$count.log" "$decided_at" "$done_at" "$events" "$replay_s" "$cpu" <<'EOF'
import datetime, json, sys
count, log, decided, done, events, replay_s, cpu = sys.argv[1:]
decided, done, events, replay_s = float(decided), float(done), int(events), float(replay_s)
taken = []
for line in open(log):
    try:
        fields = json.loads(line)
    except ValueError:
        continue
    if fields.get("fields", {}).get("message") == "partition taken":
        taken.append(datetime.datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00")).timestamp())
start = min(taken)
decisions, whole = decided - start, done - start
print(f"{count} partition(s), one owner: every decision stored {decisions:.2f} s after the first "
      f"partition was taken: {events / decisions:,.0f} events/s ({decisions / replay_s:.1f} x the "
      f"replay's time); every event in the log after {whole:.2f} s: {events / whole:,.0f} events/s; "
      f"the owner's CPU time {cpu} s; exported decisions equal the replay's")
EOF
done
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(nproc) cores"

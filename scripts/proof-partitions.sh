#!/usr/bin/env bash
# The partitioned engine's proof at size (issue 21, part 3; the small one is
# crates/cli/tests/partitions_proof.rs): three `portcullis serve` processes (release build) with
# engine_partitions = 4 on one fresh PostgreSQL database and the local NATS, fed a simulated
# feed of about 100,000 events through JetStream (`portcullis publish`). Two runs, each on a
# fresh database and stream of its own:
#   - steady: nobody dies; the time from the first publish to the last decision stored, the
#     events per second it makes, and each process's CPU time;
#   - failover: one process holding partitions is killed with SIGKILL once half the decisions
#     are stored; the time from the kill to the first decision stored by a new owner of one of
#     its partitions (its log line), and the whole run.
# Both runs' decisions, exported in the feed's order, must equal `portcullis replay` of the
# same file byte for byte (checked with cmp). `portcullis replay`'s own time is the
# single-process figure beside them.
#
#   scripts/proof-partitions.sh [accounts, default 2000] [days, default 14]
#   PORTCULLIS_BENCH_PROFILE=debug scripts/proof-partitions.sh 100 7   (a quick check)
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-2000}"
days="${2:-14}"
partitions=4
source scripts/partitions-lib.sh
simulated_feed "$accounts" "$days"
echo "feed: $events events, $deciding decisions; portcullis replay (one process): ${replay_s} s ($(python3 -c "print(round($events / $replay_s))") events/s)"

# One run: $1 = name, $2 = "kill" to kill a process halfway.
run() {
  local name=$1 kill=$2
  fresh_deployment "proof_$name" "$partitions"
  local nodes=()
  for i in 0 1 2; do
    "$bin" serve 2>"$work/$name-$i.log" >/dev/null &
    nodes+=($!)
    pids+=($!)
    until grep -qs '"portcullis listening"' "$work/$name-$i.log"; do sleep 0.05; done
  done
  # The partitions spread over the three before the feed starts (2, 1 and 1).
  until [ "$(sql "$url" "SELECT COUNT(DISTINCT owner) FROM partition_leases WHERE expires_at > 0")" = 3 ]; do
    sleep 0.1
  done
  local t0 killed_at="" victim=""
  t0=$(now)
  "$bin" publish "$feed" --partitions $partitions --subject-prefix "$prefix" --nats-url "$nats_url" 2>"$work/$name-publish.log" &
  local publisher=$!
  if [ "$kill" = kill ]; then
    until [ "$(sql "$url" "SELECT COUNT(*) FROM decisions")" -ge $((deciding / 2)) ]; do sleep 0.02; done
    for pid in "${nodes[@]}"; do
      if [ "$(sql "$url" "SELECT COUNT(*) FROM partition_leases WHERE owner LIKE '$pid-%' AND expires_at > 0")" -gt 0 ]; then
        victim=$pid
        break
      fi
    done
    sql "$url" "SELECT part FROM partition_leases WHERE owner LIKE '$victim-%'" >"$work/$name-victim-partitions"
    kill -9 "$victim"
    killed_at=$(now)
  fi
  wait "$publisher"
  local published_at
  published_at=$(now)
  until [ "$(sql "$url" "SELECT COUNT(*) FROM decisions")" -ge "$deciding" ]; do sleep 0.02; done
  local done_at
  done_at=$(now)
  local cpu=""
  for pid in "${nodes[@]}"; do
    if [ "$pid" != "$victim" ]; then cpu+="$(ps -o times= -p "$pid" | tr -d ' ') "; fi
  done
  "$bin" decisions export --events "$feed" --out "$work/$name-exported.jsonl" 2>/dev/null
  cmp "$work/$name-exported.jsonl" "$work/replayed.jsonl"
  echo "$name: exported decisions equal the replay's byte for byte ($deciding decisions)"
  python3 - "$name" "$t0" "$published_at" "$done_at" "$events" "$partitions" "$replay_s" "$killed_at" "$work" "$cpu" <<'EOF'
import json, sys, datetime
name, t0, published, done, events, partitions, replay_s, killed, work, cpu = sys.argv[1:]
t0, published, done, events, partitions, replay_s = float(t0), float(published), float(done), int(events), int(partitions), float(replay_s)
whole = done - t0
print(f"{name}: publish {published - t0:.2f} s; first publish to last decision stored {whole:.2f} s: "
      f"{events / whole:,.0f} events/s over {partitions} partitions ({events / partitions / whole:,.0f} per partition owner), "
      f"{whole / replay_s:.1f} x the one-process replay; CPU seconds of the processes alive at the end: {cpu.strip()}")
if killed:
    killed = float(killed)
    victim = {int(p) for p in open(f"{work}/{name}-victim-partitions").read().split()}
    firsts = []
    for i in range(3):
        for line in open(f"{work}/{name}-{i}.log"):
            try:
                log = json.loads(line)
            except ValueError:
                continue
            fields = log.get("fields", {})
            if fields.get("message") == "first decision stored since the partition was taken" and fields.get("partition") in victim:
                at = datetime.datetime.fromisoformat(log["timestamp"].replace("Z", "+00:00")).timestamp()
                if at > killed:
                    firsts.append(at)
    if firsts:
        print(f"{name}: partitions {sorted(victim)} killed; first decision by a new owner {min(firsts) - killed:.2f} s after the kill (lease 5000 ms)")
    else:
        print(f"{name}: partitions {sorted(victim)} killed; no decision by a new owner found in the logs")
EOF
  for pid in "${nodes[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}

run steady no
run failover kill
echo "machine load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(nproc) cores"

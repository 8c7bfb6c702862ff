#!/usr/bin/env bash
# Fuzzes the hand-written fast paths with cargo fuzz (libFuzzer, AddressSanitizer, the nightly
# toolchain): the event contract's line readers against serde's, the freshness scanner and the
# signature decoders against plain readings, and the replay table against its one promise.
#
#   scripts/fuzz.sh            each target for 60 s
#   scripts/fuzz.sh 3600       the long run (an hour a target)
#   scripts/fuzz.sh 8          the short run the test command makes
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 86400 policy   ten million inputs (or a day) of one target
#   FUZZ_SANITIZER=none FUZZ_RUNS=10000000 scripts/fuzz.sh 86400 policy
#                               the same without AddressSanitizer (built in fuzz/target-none):
#                               every assertion and panic still counts, memory errors in the
#                               dependencies' unsafe code are not seen; about seven times the
#                               inputs a second for the policy loader (docs/security.md)
#
# Any arguments after the seconds name the targets to run (all of them otherwise).
# Corpora grow in fuzz/corpus/<target> (not committed) from the seeds in fuzz/seeds/<target>.
# A failure leaves its input in fuzz/artifacts/<target>/ and exits non-zero; replay it with
# `cargo +nightly fuzz run --fuzz-dir fuzz <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
targets=(contract_line freshness hex_decoder signature_decoding replay_guard allowlist policy center_input)
if [ "$#" -gt 1 ]; then
  targets=("${@:2}")
fi
sanitizer="${FUZZ_SANITIZER:-address}"
build=(--sanitizer "$sanitizer")
if [ "$sanitizer" != address ]; then
  # Apart from the AddressSanitizer builds, so that switching does not rebuild everything.
  build+=(--target-dir "fuzz/target-$sanitizer")
fi
runs=()
if [ -n "${FUZZ_RUNS:-}" ]; then
  runs=(-runs="$FUZZ_RUNS")
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is not installed (rustup toolchain install nightly); not fuzzing" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io" >&2
  cargo install --locked -q cargo-fuzz
fi
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
  echo "fuzz: $target for ${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS inputs} (sanitizer: $sanitizer)" >&2
  started=$SECONDS
  cargo +nightly fuzz run --fuzz-dir fuzz "${build[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" "${runs[@]}" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|thread|.*panicked|Failed|artifact_prefix|Test unit written)' || true
  status=${PIPESTATUS[0]}
  echo "fuzz: $target took $((SECONDS - started))s (build included)" >&2
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED (input saved under fuzz/artifacts/$target/)" >&2
    exit "$status"
  fi
done
echo "fuzz: ${targets[*]}: no failure" >&2

#!/usr/bin/env bash
# `make fuzz`: every fuzz target (fuzz/Cargo.toml) under libFuzzer with cargo-fuzz, one
# after the other, FUZZ_S seconds each (default 60), from its committed corpus
# fuzz/corpus/<target> plus its seeds; new inputs are added to the corpus (minimise it with
# `cargo +nightly fuzz cmin <target> corpus/<target> -- -use_counters=0` before committing). Prints, per target, the
# executions, exec/s and coverage (libFuzzer's cov/ft) of the final stats line; exits 1
# when a target found a crash (its input is in fuzz/artifacts/<target>/: make it a
# regression test in the owning crate, see fuzz/README.md).
#
# FUZZ_TARGETS="receipt timestamp" limits the run; FUZZ_NICE (default 0) lowers the
# priority; FUZZ_JOBS (default 2) bounds the build's parallelism.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root/fuzz"
secs=${FUZZ_S:-60}
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^tamga-fuzz$')}
logs="$root/target/fuzz-logs"
mkdir -p "$logs"

# The nightly toolchain this machine has; without it, stable with its nightly features
# unlocked (RUSTC_BOOTSTRAP) — a toolchain cannot be downloaded here.
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi

seeds_of() {
  case "$1" in
    stream_c14n) echo seeds/c14n ;;
    gost_decode) echo seeds/gost ;;
    *) echo "seeds/$1" ;;
  esac
}

for t in $targets; do
  CARGO_BUILD_JOBS=${FUZZ_JOBS:-2} nice -n "${FUZZ_NICE:-0}" "${fuzz[@]}" build "$t" \
    >/dev/null 2>"$logs/build.log" || { cat "$logs/build.log"; exit 1; }
done

failed=()
printf '%-18s %6s %12s %9s %7s %7s  %s\n' target secs executions exec/s cov ft corpus
for t in $targets; do
  mkdir -p "corpus/$t"
  seeds=$(seeds_of "$t")
  [ -d "$seeds" ] || seeds=""
  log="$logs/$t.log"
  status=0
  nice -n "${FUZZ_NICE:-0}" "${fuzz[@]}" run "$t" "corpus/$t" $seeds -- \
    -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30 \
    >"$log" 2>&1 || status=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  printf '%-18s %6s %12s %9s %7s %7s  %s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$(find "corpus/$t" -type f | wc -l) files"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -5 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in $logs)"
  exit 1
fi

#!/usr/bin/env bash
# `make flaky-check`: runs the process-level suites (per-stage smoke tests and
# the SIGTERM-at-ready race, the CLI contract tests, the pipeline scenarios on
# both paths) FLAKY_N times (default 20) and reports every test that failed at
# least once, with its output. Not part of `make test`: it is how a suspicion
# of flakiness is settled before an issue is closed.
set -uo pipefail
cd "$(dirname "$0")/../.."
N="${FLAKY_N:-20}"
FILTER="${FLAKY_FILTER:-binary(smoke) | binary(sigterm_race) | (package(tamga) & binary(cli)) | binary(scenarios)}"
OUT="${FLAKY_OUT:-target/flaky-check}"
rm -rf "$OUT"; mkdir -p "$OUT/extracted"
# Built once, into an archive: every run tests the same binaries even if the
# tree changes meanwhile.
cargo nextest archive --workspace --archive-file "$OUT/tests.tar.zst" >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 2; }
declare -A failures=()
passed_runs=0
for i in $(seq 1 "$N"); do
  log="$OUT/run-$i.log"
  if cargo nextest run --archive-file "$OUT/tests.tar.zst" --workspace-remap . --extract-to "$OUT/extracted" --extract-overwrite \
      --no-fail-fast --failure-output final -E "$FILTER" >"$log" 2>&1; then
    passed_runs=$((passed_runs + 1))
    echo "run $i/$N: passed ($(grep -Eo '[0-9]+ tests? run: [0-9]+ passed' "$log" | tail -1))"
  else
    if ! grep -qE '^\s+Summary' "$log"; then
      echo "run $i/$N: did not run: $(tail -3 "$log" | paste -sd ' ')"
      failures["(the run itself)"]="${failures["(the run itself)"]:-} $i"
      continue
    fi
    names=$(grep -E '^\s+(FAIL|SIGSEGV|SIGABRT|TIMEOUT|SIGKILL|ABORT)' "$log" | sed -E 's/^\s+[A-Z]+ \[[^]]*\] (\([^)]*\) )?//' | sort -u)
    echo "run $i/$N: FAILED — $(echo "$names" | paste -sd ', ') (log: $log)"
    while IFS= read -r t; do
      [ -n "$t" ] && failures["$t"]="${failures["$t"]:-} $i"
    done <<<"$names"
  fi
done
echo
echo "flaky-check: $passed_runs of $N runs passed"
if [ "${#failures[@]}" -eq 0 ]; then
  exit 0
fi
for t in "${!failures[@]}"; do
  echo "== $t failed in run(s):${failures[$t]}"
  first=$(echo "${failures[$t]}" | awk '{print $1}')
  # nextest prints each failure's captured output between `--- STDOUT/STDERR:` markers.
  awk -v t="$t" 'index($0, "--- STD") && index($0, t) {p=1} p && /^\s+(PASS|FAIL) \[/ {p=0} p' "$OUT/run-$first.log" | head -200
done
exit 1

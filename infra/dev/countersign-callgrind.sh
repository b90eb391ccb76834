#!/usr/bin/env bash
# Instruction counts (callgrind) of issue 12's countersign benchmark, beside its times
# (`make bench`): Tamga's countersign + receipt on the 25 KB declaration, against the
# fair reference, xmlsec1 making the same two signatures (the counter-signature, through
# `--node-id`, and the receipt) with the same key. Per declaration:
#   Tamga:   callgrind over `countersign_profile_loop` (N iterations) / N
#   xmlsec1: (run with --repeat N+1 minus run with --repeat 1) / N, for each template,
#            so process start-up, library initialisation and key loading cancel out.
# Instruction counts do not depend on what else the machine is doing, unlike times.
# `make countersign-callgrind` (N: CALLGRIND_N, default 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${CALLGRIND_N:-20}
command -v valgrind >/dev/null || { echo "valgrind is missing (make deps)"; exit 1; }
command -v xmlsec1 >/dev/null || { echo "xmlsec1 is missing (make deps)"; exit 1; }
cargo bench -p tamga --bench verify --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/verify-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

instructions() { # callgrind output file -> total instructions collected
  awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

printf '%-9s %22s %22s %22s %8s\n' authority "tamga (instr/decl)" "xmlsec1 countersig" "xmlsec1 receipt" ratio
for which in ECDSA RSA; do
  out="$work/$which"
  TAMGA_BENCH_PROFILE="countersign $which" TAMGA_BENCH_PROFILE_ITERS=$n \
  TAMGA_BENCH_XMLSEC1_DIR="$out" \
    valgrind --tool=callgrind --callgrind-out-file="$work/tamga-$which.out" \
      --toggle-collect='*countersign_profile_loop*' "$bin" --bench >/dev/null 2>&1
  tamga=$(( $(instructions "$work/tamga-$which.out") / n ))
  mapfile -t args <"$out/args"
  key=${args[0]}
  extra=("${args[@]:1}")
  per_doc() { # template, extra args...
    local t=$1; shift
    local counts=()
    for r in 1 $((n + 1)); do
      valgrind --tool=callgrind --callgrind-out-file="$work/x.out" \
        xmlsec1 --sign --repeat "$r" --privkey-pem "$key" "$@" --output /dev/null "$t" \
        >/dev/null 2>&1
      counts+=("$(instructions "$work/x.out")")
    done
    echo $(( (counts[1] - counts[0]) / n ))
  }
  cs=$(per_doc "$out/countersign.xml" "${extra[@]}")
  receipt=$(per_doc "$out/receipt.xml")
  ratio=$(awk -v t="$tamga" -v a="$cs" -v b="$receipt" 'BEGIN { printf "%.2fx", (a + b) / t }')
  printf '%-9s %22s %22s %22s %8s\n' "$which" "$tamga" "$cs" "$receipt" "$ratio"
done
echo "(ratio > 1: Tamga executes fewer instructions; it also checks both signatures it makes)"

#!/usr/bin/env bash
# The pipeline benchmark (`make bench-pipeline`): a demo PKI, a fresh vhost
# and database, `tamga bench pipeline` at full speed and at 500/s.
# Durability is on: persistent messages, publisher confirms, quorum queues,
# synchronous_commit (PostgreSQL's default).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tamga
T=target/release/tamga
work=$(mktemp -d)
vhost="tamga-bench-$$"
db="tamga_bench_$$"
cleanup() {
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
rabbitmqctl -q add_vhost "$vhost"
rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
$T pki demo --out "$work/pki" --countries KZ,AZ,TR,KG 2>/dev/null
cat > "$work/site.toml" <<TOML
[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/$vhost"
prefetch = ${PREFETCH:-128}
[database]
url = "postgres://postgres@127.0.0.1:5432/$db"
pool_size = ${POOL:-16}
group_commit = ${GROUP_COMMIT:-64}
[trust]
dir = "$work/pki/trust"
[worker]
name = "bench"
concurrency = ${CONCURRENCY:-64}
[metrics]
listen = ""
[log]
level = "info"
TOML
for cc in KZ AZ TR KG; do
cat >> "$work/site.toml" <<TOML
[[authority]]
country = "$cc"
key = "$work/pki/keys/$cc/authority.key"
cert = "$work/pki/keys/$cc/authority.pem"
chain = ["$work/pki/keys/$cc/issuing-ca.pem"]
TOML
done
B="$T bench pipeline --config $work/site.toml --pki $work/pki"
N=${COUNT:-3000}
rate_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughputPerSecond"])' "$1"; }
echo "== reference: a bare broker relay (no verification, no database), full speed, $N messages"
$B --count "$N" --reference | tee "$work/reference.json"
echo "== tamga, fused stage (the default), full speed, $N declarations (ECDSA P-256 countersigning)"
$B --count "$N" | tee "$work/fused.json"
relay=$(rate_of "$work/reference.json")
fused=$(rate_of "$work/fused.json")
python3 -c 'import sys; r,f=map(float,sys.argv[1:]); print(f"== ratio: fused {f:.0f}/s against the relay {r:.0f}/s in the same run = {100*f/r:.1f}% (goal >= 40%)")' "$relay" "$fused"
# The latency goal is stated at half the measured maximum: that rate, from this run.
half=$(python3 -c 'import sys; print(max(1, int(float(sys.argv[1]) / 2)))' "$fused")
# The same with group commit off (one transaction per record): the lever's
# effect measured in the same run.
sed 's/^group_commit = .*/group_commit = 0/' "$work/site.toml" > "$work/site-no-group-commit.toml"
echo "== tamga, fused, group commit off, full speed, $N declarations"
$T bench pipeline --config "$work/site-no-group-commit.toml" --pki "$work/pki" --count "$N"
echo "== tamga, three separate stages, full speed, $N declarations"
$B --count "$N" --stages verify,countersign,forward
echo "== tamga, fused, at half the measured maximum (${half}/s), ${COUNT_HALF:-3000} declarations (goal: p99 <= 100 ms)"
$B --count "${COUNT_HALF:-3000}" --rate "$half"
echo "== tamga, fused, at ${RATE:-500}/s, ${COUNT500:-3000} declarations"
$B --count "${COUNT500:-3000}" --rate "${RATE:-500}"
echo "== the broker gateway (release build): ${GATEWAY_COUNT:-1000} declarations straight to tamga.inbound, then as many over HTTP (same run)"
cargo run --release -q -p tamga-gateway --example gateway_load -- "${GATEWAY_COUNT:-1000}" --clients="${GATEWAY_CLIENTS:-64}"

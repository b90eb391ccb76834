#!/usr/bin/env bash
# The broker's view of `make demo`: `tamga serve` on the embedded default for a moment,
# a token for a KZ broker, one good and one forged declaration submitted over HTTP with
# curl, their status followed to the end, the signed receipts fetched.
# Usage: infra/dev/demo-gateway.sh [DEMO-OUT]   (after `tamga demo --out DEMO-OUT`)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-demo-out}
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
command -v curl >/dev/null || { echo "demo-gateway: curl is needed (apt-get install curl)"; exit 1; }
$CARGO build -q -p tamga --bin tamga
TAMGA=$TARGET/debug/tamga
DIR=$OUT/gateway
rm -rf "$DIR"; mkdir -p "$DIR"
GOOD=$OUT/declarations/01-kz-az-broker-rsa-xades.xml
[ -f "$GOOD" ] || { echo "demo-gateway: run tamga demo --out $OUT first"; exit 1; }
sed '0,/<HSCode>/s//<HSCode>9/' "$GOOD" > "$DIR/forged.xml"

cat > "$DIR/site.toml" <<TOML
[trust]
dir = "$OUT/pki/trust"

[[authority]]
country = "AZ"
key = "$OUT/pki/keys/AZ/authority.key"
cert = "$OUT/pki/keys/AZ/authority.pem"
chain = ["$OUT/pki/keys/AZ/issuing-ca.pem"]

[metrics]
listen = ""

[embedded]
sqlite = "$DIR/audit.sqlite"

[gateway]
listen = "127.0.0.1:0"
TOML

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT
echo
echo "== The broker gateway (tamga serve, embedded default) =="
TOKEN=$("$TAMGA" gateway token create --config "$DIR/site.toml" --broker kz-demo-broker --country KZ)
echo "\$ tamga gateway token create --config $DIR/site.toml --broker kz-demo-broker --country KZ"
echo "${TOKEN:0:10}…  (shown once; only its SHA-256 is stored)"
"$TAMGA" serve --config "$DIR/site.toml" 2> "$DIR/serve.log" &
pid=$!
ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(grep -o 'ready on http://[0-9.:]*' "$DIR/serve.log" | head -1 | sed 's/.*http:\/\///') || true
  [ -n "$ADDR" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$DIR/serve.log"; exit 1; }
  sleep 0.2
done
[ -n "$ADDR" ] || { echo "tamga serve did not log ready"; exit 1; }
URL=http://$ADDR
echo "tamga serve: ready on $URL"

submit() { # file key
  curl -sS -i -X POST "$URL/v1/declarations" \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/xml" \
    -H "X-Tamga-Origin: KZ" -H "X-Tamga-Destination: AZ" -H "Idempotency-Key: $2" \
    --data-binary "@$1"
}
follow() { # id final-status
  local v s
  for _ in $(seq 1 300); do
    v=$(curl -sS "$URL/v1/declarations/$1" -H "Authorization: Bearer $TOKEN")
    s=$(printf '%s' "$v" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
    [ "$s" = "$2" ] && { printf '%s\n' "$v"; return 0; }
    sleep 0.1
  done
  echo "still: $v"; return 1
}
for case in "good:$GOOD:forwarded:accepted" "forged:$DIR/forged.xml:rejected:rejected"; do
  IFS=: read -r name file final label <<<"$case"
  echo
  echo "\$ curl -X POST $URL/v1/declarations … --data-binary @$file   ($name)"
  resp=$(submit "$file" "demo-$name")
  printf '%s\n' "$resp" | grep -iE '^(HTTP/|location:)' | tr -d '\r'
  id=$(printf '%s' "$resp" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
  printf '%s\n' "$resp" | tail -1
  echo "\$ curl $URL/v1/declarations/$id   (until $final)"
  follow "$id" "$final"
  curl -sS -o "$DIR/receipt-$label.xml" -w "receipt: HTTP %{http_code} %{content_type}, %{size_download} bytes -> $DIR/receipt-$label.xml\n" \
    "$URL/v1/declarations/$id/receipt" -H "Authorization: Bearer $TOKEN"
done
echo
echo "Every receipt carries a signed QR (schemas/qr.md); a checkpoint checks it offline,"
echo "with its trust directory and the signed bundle from GET /v1/trust-bundle:"
QR=$("$TAMGA" receipt qr --svg "$DIR/receipt-accepted.svg" "$DIR/receipt-accepted.xml")
echo "\$ tamga receipt qr --svg $DIR/receipt-accepted.svg $DIR/receipt-accepted.xml"
echo "${QR:0:48}…  (${#QR} characters, one line)"
curl -sS -o "$DIR/trust-bundle.cose" "$URL/v1/trust-bundle"
echo "\$ tamga receipt verify-qr --trust $OUT/pki/trust --bundle $DIR/trust-bundle.cose TMG1:…"
"$TAMGA" receipt verify-qr --trust "$OUT/pki/trust" --bundle "$DIR/trust-bundle.cose" "$QR" \
  | grep -E '"(valid|state|decision|receiptId)"'
OFFICER=$("$TAMGA" gateway token create --config "$DIR/site.toml" --broker demo-officer --role officer)
code=$(curl -sS -G -o "$DIR/check.html" -w '%{http_code}' -H "Authorization: Bearer $OFFICER" \
  --data-urlencode "q=$QR" "$URL/check")
echo "checkpoint page $URL/check?q=…: HTTP $code, verdict: $(grep -o 'data-verdict="[a-z-]*"' "$DIR/check.html" | head -1)"

echo
echo "The same key again answers the same 202 and id, publishing nothing:"
submit "$GOOD" demo-good | grep -iE '^(HTTP/|idempotent-replayed)' | tr -d '\r'
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
echo "tamga serve stopped (SIGTERM)."

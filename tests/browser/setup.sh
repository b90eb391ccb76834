#!/usr/bin/env bash
# Starts `tamga serve` (embedded default) on a fresh demo PKI with four checkpoints
# (AZ-ALAT, AZ-ASTARA, the exit AZ-EXIT, and AZ-MOBILE for the offline tests), submits an accepted and a rejected declaration
# over HTTP (and two more accepted ones for the repeated-scan and offline-log tests), makes
# page tokens (officers, auditor, analyst, a broker), a tampered QR and a QR from an
# authority this site does not know, and writes them to $OUT/env.json for the browser
# tests. Prints the server's pid on stdout's last line.
# Usage: tests/browser/setup.sh OUT-DIR TAMGA-BINARY
set -euo pipefail
OUT=$1
TAMGA=$2
rm -rf "$OUT"; mkdir -p "$OUT"
"$TAMGA" demo --out "$OUT/demo" > "$OUT/demo.log" 2>&1
GOOD=$OUT/demo/declarations/01-kz-az-broker-rsa-xades.xml
sed '0,/<HSCode>/s//<HSCode>9/' "$GOOD" > "$OUT/forged.xml"
cat > "$OUT/site.toml" <<TOML
[trust]
dir = "$OUT/demo/pki/trust"

[[authority]]
country = "AZ"
key = "$OUT/demo/pki/keys/AZ/authority.key"
cert = "$OUT/demo/pki/keys/AZ/authority.pem"
chain = ["$OUT/demo/pki/keys/AZ/issuing-ca.pem"]

[metrics]
listen = ""

[embedded]
sqlite = "$OUT/audit.sqlite"

[gateway]
listen = "127.0.0.1:0"

[gateway.checks]
checkpoints = ["AZ-ALAT", "AZ-ASTARA", "AZ-EXIT", "AZ-MOBILE"]
exit_checkpoints = ["AZ-EXIT"]
TOML
token() { "$TAMGA" gateway token create --config "$OUT/site.toml" "$@"; }
BROKER=$(token --broker kz-demo-broker --country KZ)
OFFICER=$(token --broker officer-alat --role officer)
OFFICER2=$(token --broker officer-astara --role officer)
AUDITOR=$(token --broker auditor-1 --role auditor)
ANALYST=$(token --broker analyst-1 --role analyst)
# stdout too: the caller reads this script's stdout to its end.
"$TAMGA" serve --config "$OUT/site.toml" > "$OUT/serve.out" 2> "$OUT/serve.log" &
pid=$!
ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(grep -o 'ready on http://[0-9.:]*' "$OUT/serve.log" | head -1 | sed 's/.*http:\/\///') || true
  [ -n "$ADDR" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$OUT/serve.log" >&2; exit 1; }
  sleep 0.2
done
[ -n "$ADDR" ] || { echo "tamga serve did not log ready" >&2; kill "$pid"; exit 1; }
URL=http://$ADDR
submit() { # file key
  curl -sS -X POST "$URL/v1/declarations" \
    -H "Authorization: Bearer $BROKER" -H "Content-Type: application/xml" \
    -H "X-Tamga-Origin: KZ" -H "X-Tamga-Destination: AZ" -H "Idempotency-Key: $2" \
    --data-binary "@$1" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p'
}
follow() { # id final-status → the status JSON
  local v s
  for _ in $(seq 1 600); do
    v=$(curl -sS "$URL/v1/declarations/$1" -H "Authorization: Bearer $BROKER")
    s=$(printf '%s' "$v" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p')
    [ "$s" = "$2" ] && { printf '%s' "$v"; return 0; }
    sleep 0.1
  done
  echo "still: $v" >&2; return 1
}
qr_of() { printf '%s' "$1" | sed -n 's/.*"qr":"\(TMG1:[^"]*\)".*/\1/p'; }
# Fresh accepted declarations (another LRN, signed again by the KZ broker): one presented at
# two checkpoints (the repeated-scan test), one checked offline.
fresh() { # lrn → signed file
  python3 - "$GOOD" "$1" > "$OUT/$1.xml" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
text = re.sub(r"<ds:Signature .*</ds:Signature>", "", text, flags=re.S)
sys.stdout.write(text.replace("KZ26TMG0000000001", sys.argv[2]))
PY
  "$TAMGA" sign --key "$OUT/demo/pki/keys/KZ/broker-ecdsa.key" --cert "$OUT/demo/pki/keys/KZ/broker-ecdsa.pem" \
    --chain "$OUT/demo/pki/keys/KZ/issuing-ca.pem" "$OUT/$1.xml" > "$OUT/$1.signed.xml"
}
fresh KZ26TMG0000000071
fresh KZ26TMG0000000072
GOOD_ID=$(submit "$GOOD" browser-good)
REPEAT_ID=$(submit "$OUT/KZ26TMG0000000071.signed.xml" browser-repeat)
OFFLINE_ID=$(submit "$OUT/KZ26TMG0000000072.signed.xml" browser-offline)
BAD_ID=$(submit "$OUT/forged.xml" browser-forged)
GOOD_QR=$(qr_of "$(follow "$GOOD_ID" forwarded)")
BAD_QR=$(qr_of "$(follow "$BAD_ID" rejected)")
REPEAT_QR=$(qr_of "$(follow "$REPEAT_ID" forwarded)")
OFFLINE_QR=$(qr_of "$(follow "$OFFLINE_ID" forwarded)")
# The receipt id of the accepted declaration (typed when the QR is unreadable).
GOOD_RECEIPT=$(curl -sS "$URL/v1/declarations/$GOOD_ID/receipt" -H "Authorization: Bearer $BROKER" \
  | sed -n 's/.*<ReceiptId>\(rcpt-[0-9a-f]*\)<\/ReceiptId>.*/\1/p')
# More, for the dashboard: the demo's KZ forgeries and faulty certificates (rejected for
# their reasons) and a UZ → AZ declaration, from a broker of any origin (08 is 01's bytes
# claimed from TR: left out, it would be a second submission of the accepted document).
ANY=$(token --broker any-broker)
n=0
for f in "$OUT"/demo/declarations/{05,06,07,09,10,11,12}-*.xml; do
  n=$((n + 1))
  from=$(basename "$f" | cut -d- -f2 | tr a-z A-Z)
  [ ${#from} -eq 2 ] || from=KZ
  curl -sS -o /dev/null -X POST "$URL/v1/declarations" \
    -H "Authorization: Bearer $ANY" -H "Content-Type: application/xml" \
    -H "X-Tamga-Origin: $from" -H "X-Tamga-Destination: AZ" -H "Idempotency-Key: browser-more-$n" \
    --data-binary "@$f" || true
done
# Tampered: one character of the signed part changed.
TAMPERED=$(python3 -c 'import sys; q=sys.argv[1]; i=len(q)//2; c="0" if q[i]!="0" else "1"; print(q[:i]+c+q[i+1:])' "$GOOD_QR")
# Another AZ authority (another demo PKI, same names): its receipt's QR is signed by a key
# this site's trust list does not recognise.
"$TAMGA" pki demo --out "$OUT/other" --countries AZ,KZ > /dev/null 2>&1
"$TAMGA" countersign --key "$OUT/other/keys/AZ/authority.key" --cert "$OUT/other/keys/AZ/authority.pem" \
  --chain "$OUT/other/keys/AZ/issuing-ca.pem" --trust "$OUT/demo/pki/trust" --from KZ \
  --receipt "$OUT/other-receipt.xml" "$GOOD" > /dev/null 2>&1 || true
OTHER_QR=$("$TAMGA" receipt qr "$OUT/other-receipt.xml")
# A QR from an authority of a country this site's trust list does not have (GE): the page
# cannot decide (amber), it is not a forgery.
"$TAMGA" pki demo --out "$OUT/far" --countries GE,KZ > /dev/null 2>&1
"$TAMGA" countersign --key "$OUT/far/keys/GE/authority.key" --cert "$OUT/far/keys/GE/authority.pem" \
  --chain "$OUT/far/keys/GE/issuing-ca.pem" --trust "$OUT/demo/pki/trust" --from KZ \
  --receipt "$OUT/far-receipt.xml" "$GOOD" > /dev/null 2>&1 || true
FAR_QR=$("$TAMGA" receipt qr "$OUT/far-receipt.xml")
# Seed for the dashboard's checkpoint panels: a third fresh declaration presented at
# AZ-ALAT, then at AZ-ASTARA (a repeated-scan alert), and an offline check logged by
# `tamga receipt verify-qr --log` and recorded by `tamga checkpoint upload` (twice: once).
fresh KZ26TMG0000000073
SEED_ID=$(submit "$OUT/KZ26TMG0000000073.signed.xml" browser-seed)
SEED_QR=$(qr_of "$(follow "$SEED_ID" forwarded)")
check_api() { # token checkpoint payload
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/v1/checks" -H "Authorization: Bearer $1" \
    -H "Content-Type: application/json" \
    --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"input": sys.argv[2], "checkpoint": sys.argv[1], "device": "seed"}))' "$2" "$3")"
}
[ "$(check_api "$OFFICER" AZ-ALAT "$SEED_QR")" = 201 ] || { echo "seed check failed" >&2; exit 1; }
[ "$(check_api "$OFFICER2" AZ-ASTARA "$SEED_QR")" = 201 ] || { echo "seed check failed" >&2; exit 1; }
"$TAMGA" receipt verify-qr --trust "$OUT/demo/pki/trust" --log "$OUT/offline.log" \
  --checkpoint AZ-EXIT --officer officer-exit --device handheld-1 "$SEED_QR" > /dev/null
for _ in 1 2; do "$TAMGA" checkpoint upload --config "$OUT/site.toml" "$OUT/offline.log" >> "$OUT/uploads.txt"; done
python3 - "$OUT" "$URL" "$GOOD_ID" "$BAD_ID" "$GOOD_QR" "$BAD_QR" "$TAMPERED" "$OTHER_QR" "$FAR_QR" "$BROKER" "$OFFICER" "$AUDITOR" "$ANALYST" \
  "$OFFICER2" "$REPEAT_QR" "$OFFLINE_QR" "$GOOD_RECEIPT" "$OUT/site.toml" "$(paste -sd, "$OUT/uploads.txt")" <<'PY'
import json, sys
(out, url, good_id, bad_id, good_qr, bad_qr, tampered, other_qr, far_qr, broker, officer, auditor,
 analyst, officer2, repeat_qr, offline_qr, good_receipt, site, uploads) = sys.argv[1:]
json.dump({"url": url, "goodId": good_id, "badId": bad_id, "goodQr": good_qr, "badQr": bad_qr,
           "tamperedQr": tampered, "otherQr": other_qr, "farQr": far_qr, "brokerToken": broker,
           "officerToken": officer, "auditorToken": auditor, "analystToken": analyst,
           "officer2Token": officer2, "repeatQr": repeat_qr, "offlineQr": offline_qr,
           "goodReceiptId": good_receipt, "siteConfig": site, "trustDir": out + "/demo/pki/trust",
           "uploads": uploads},
          open(out + "/env.json", "w"), indent=2)
PY
echo "$pid"

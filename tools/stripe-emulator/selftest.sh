#!/usr/bin/env bash
# Self-test of the Stripe test emulator: starts it with start.sh, drives the
# Shared Payment Token + PaymentIntent flows with curl the way the stock mppx
# client and an mppx-style server do, and stops it again.
# Prints one "ok"/"not ok" line per check and "N passed, N failed" at the end;
# exits non-zero if any check failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v curl >/dev/null || { echo "selftest: curl is required" >&2; exit 1; }

env_out="$("$HERE/start.sh")" || { echo "selftest: start.sh failed" >&2; exit 1; }
eval "$env_out"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stripe-emulator-selftest.XXXXXX")"
cleanup() {
  "$HERE/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

PY="$HERE/.venv/bin/python"
B="$STRIPE_API_BASE"
SK="sk_test_selftest_$$"
VERSION="2026-07-29.preview"
PASS=0
FAIL=0

check() { # check DESCRIPTION COMMAND...
  local what="$1"; shift
  if "$@"; then
    PASS=$((PASS + 1)); echo "ok - $what"
  else
    FAIL=$((FAIL + 1)); echo "not ok - $what"
    echo "  last response: HTTP $CODE $(head -c 600 "$WORK/body" 2>/dev/null)"
  fi
}

# req NAME CURL-ARGS...: response body in $WORK/body, headers in $WORK/headers,
# status in $CODE.
CODE=""
req() {
  CODE="$(curl -sS -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' "$@")" || CODE="curl-failed"
}

# jget EXPR: evaluate a Python expression on the JSON body bound to `d`.
jget() {
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print("" if v is None else v)' \
    "$WORK/body" "$1" 2>/dev/null
}
header() { # header NAME -> value of that response header
  grep -i "^$1:" "$WORK/headers" | head -1 | sed 's/^[^:]*:[[:space:]]*//' | tr -d '\r'
}
is() { [[ "$1" == "$2" ]]; }

# mint PM [MAX_AMOUNT]: a test SPT as mppx's CLI mints it (Basic auth,
# preview Stripe-Version, seller_details and metadata).
mint() {
  req -u "$SK:" -H "Stripe-Version: $VERSION" \
    "$B/v1/test_helpers/shared_payment/granted_tokens" \
    -d "payment_method=$1" \
    -d "usage_limits[currency]=usd" \
    -d "usage_limits[max_amount]=${2:-5000}" \
    -d "usage_limits[expires_at]=$(( $(date +%s) + 300 ))" \
    -d "seller_details[network_id]=profile_test_selftest" \
    -d "metadata[source]=selftest"
}

# settle KEY SPT AMOUNT [EXTRA CURL ARGS]: a PaymentIntent as an mppx-style
# server creates it.
settle() {
  local key="$1" spt="$2" amount="$3"; shift 3
  req -H "Authorization: Bearer $SK" -H "Idempotency-Key: $key" \
    -H "Stripe-Version: $VERSION" "$B/v1/payment_intents" \
    -d "amount=$amount" -d currency=usd -d confirm=true \
    -d "automatic_payment_methods[enabled]=true" \
    -d "automatic_payment_methods[allow_redirects]=never" \
    -d "shared_payment_granted_token=$spt" \
    -d "metadata[machine_payment]=true" -d "metadata[mpp_intent]=charge" \
    -d "metadata[mpp_challenge_id]=chal_$key" "$@"
}

echo "# emulator at $B (pids $STRIPE_EMULATOR_PIDS)"

# --- 1. mint an SPT ---------------------------------------------------------
mint pm_card_visa 1000
SPT="$(jget 'd["id"]')"
check "mint SPT: 200" is "$CODE" 200
check "mint SPT: id spt_… ($SPT)" is "${SPT:0:4}" spt_
check "mint SPT: object shared_payment.granted_token" is "$(jget 'd["object"]')" shared_payment.granted_token
check "mint SPT: usage_limits echoed" is "$(jget 'd["usage_limits"]["max_amount"], d["usage_limits"]["currency"]')" "(1000, 'usd')"
check "mint SPT: livemode false" is "$(jget 'd["livemode"]')" False

# --- 2. create + confirm a PaymentIntent with it ---------------------------
KEY1="mpp_selftest_$$_1"
settle "$KEY1" "$SPT" 500
PI1="$(jget 'd["id"]')"
CH1="$(jget 'd["latest_charge"]')"
check "settle: 200" is "$CODE" 200
check "settle: status succeeded ($PI1)" is "$(jget 'd["status"]')" succeeded
check "settle: amount 500 usd" is "$(jget 'd["amount"], d["currency"]')" "(500, 'usd')"
check "settle: latest_charge is a charge id ($CH1)" is "${CH1:0:3}" ch_
check "settle: metadata carries the SPT and mpp fields" is \
  "$(jget 'd["metadata"]["shared_payment_granted_token"], d["metadata"]["mpp_intent"]')" "('$SPT', 'charge')"
check "settle: Stripe-Version echoed" is "$(header Stripe-Version)" "$VERSION"
check "settle: not marked replayed" is "$(header Idempotent-Replayed)" ""

# --- 3. replay with the same Idempotency-Key -------------------------------
settle "$KEY1" "$SPT" 500
check "replay: 200" is "$CODE" 200
check "replay: same PaymentIntent id" is "$(jget 'd["id"]')" "$PI1"
check "replay: Idempotent-Replayed: true" is "$(header Idempotent-Replayed)" true

# same key, other parameters
settle "$KEY1" "$SPT" 501
check "same key, other params: 400" is "$CODE" 400
check "same key, other params: idempotency_error" is "$(jget 'd["error"]["type"]')" idempotency_error

# --- 4. the SPT is single use ----------------------------------------------
settle "mpp_selftest_$$_2" "$SPT" 500
check "reuse SPT with a new key: 400" is "$CODE" 400
check "reuse SPT: invalid_request_error on shared_payment_granted_token" is \
  "$(jget 'd["error"]["type"], d["error"]["param"]')" "('invalid_request_error', 'shared_payment_granted_token')"

settle "mpp_selftest_$$_3" "spt_doesnotexist" 500
check "unknown SPT: 400 resource_missing" is "$CODE $(jget 'd["error"]["code"]')" "400 resource_missing"

mint pm_card_visa 100
SPT_SMALL="$(jget 'd["id"]')"
settle "mpp_selftest_$$_4" "$SPT_SMALL" 500
check "amount above max_amount: 400" is "$CODE" 400
settle "mpp_selftest_$$_5" "$SPT_SMALL" 100
check "that SPT still works within its limit: succeeded" is "$CODE $(jget 'd["status"]')" "200 succeeded"

# --- 5. a declined card ----------------------------------------------------
mint pm_card_chargeCustomerFail 1000
SPT_FAIL="$(jget 'd["id"]')"
settle "mpp_selftest_$$_6" "$SPT_FAIL" 500
check "decline: 402" is "$CODE" 402
check "decline: card_error / card_declined / generic_decline" is \
  "$(jget 'd["error"]["type"], d["error"]["code"], d["error"]["decline_code"]')" \
  "('card_error', 'card_declined', 'generic_decline')"
check "decline: error.payment_intent present, requires_payment_method" is \
  "$(jget 'd["error"]["payment_intent"]["id"][:3], d["error"]["payment_intent"]["status"]')" \
  "('pi_', 'requires_payment_method')"
settle "mpp_selftest_$$_6" "$SPT_FAIL" 500
check "decline replay: same 402, Idempotent-Replayed: true" is "$CODE $(header Idempotent-Replayed)" "402 true"

# --- 6. manual capture -----------------------------------------------------
mint pm_card_visa 1000
SPT_M1="$(jget 'd["id"]')"
settle "mpp_selftest_$$_7" "$SPT_M1" 700 -d capture_method=manual
PI_M1="$(jget 'd["id"]')"
check "manual: requires_capture" is "$CODE $(jget 'd["status"]')" "200 requires_capture"
req -X POST -u "$SK:" -H "Idempotency-Key: cap_$$_1" "$B/v1/payment_intents/$PI_M1/capture"
check "manual: capture -> succeeded" is "$CODE $(jget 'd["status"]')" "200 succeeded"
req -X POST -u "$SK:" "$B/v1/payment_intents/$PI_M1/cancel"
check "manual: cancel after capture refused (400)" is "$CODE $(jget 'd["error"]["code"]')" "400 payment_intent_unexpected_state"

mint pm_card_visa 1000
SPT_M2="$(jget 'd["id"]')"
settle "mpp_selftest_$$_8" "$SPT_M2" 700 -d capture_method=manual
PI_M2="$(jget 'd["id"]')"
check "manual 2: requires_capture" is "$CODE $(jget 'd["status"]')" "200 requires_capture"
req -X POST -u "$SK:" "$B/v1/payment_intents/$PI_M2/cancel"
check "manual 2: cancel -> canceled" is "$CODE $(jget 'd["status"]')" "200 canceled"
req -X POST -u "$SK:" "$B/v1/payment_intents/$PI_M2/capture"
check "manual 2: capture after cancel refused (400)" is "$CODE $(jget 'd["error"]["code"]')" "400 payment_intent_unexpected_state"
req -u "$SK:" "$B/v1/payment_intents/$PI_M2"
check "manual 2: GET shows canceled, latest_charge an id" is \
  "$CODE $(jget 'd["status"], d["latest_charge"][:3]')" "200 ('canceled', 'ch_')"

# --- 7. the request log and reset hooks ------------------------------------
req "$B/_shim/requests"
check "/_shim/requests records Idempotency-Key and Stripe-Version" is \
  "$(jget '[(r["idempotency_key"], r["stripe_version"], r["form"]["shared_payment_granted_token"]) for r in d][0]')" \
  "('$KEY1', '$VERSION', '$SPT')"
check "/_shim/requests lists only PaymentIntent creates (11)" is "$(jget 'len(d)')" 11
req -X DELETE "$B/_shim/state"
check "DELETE /_shim/state: 200" is "$CODE" 200
req -u "$SK:" "$B/v1/payment_intents/$PI1"
check "after reset the intent is gone upstream (404)" is "$CODE" 404

# --- 8. stop ---------------------------------------------------------------
PIDS="$STRIPE_EMULATOR_PIDS"
"$HERE/stop.sh"
alive=""
for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
check "stop.sh: both processes gone" is "$alive" ""

echo "selftest: $PASS passed, $FAIL failed"
[[ "$FAIL" -eq 0 ]]

#!/usr/bin/env bash
# End-to-end check of the chain tooling, with cast only (no node libraries
# beyond solc-js): starts both anvils, deploys and mints the EIP-3009 token,
# signs a TransferWithAuthorization off-chain (cast wallet sign --data),
# relays it, checks balances, replay and events; then in tempo mode funds a
# fresh key with pathUSD and spends from it. Stops everything on exit.
#
#   tools/chain/selftest.sh      # prints "selftest: ok" last, exits non-zero on failure
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

pass() { echo "selftest: ok   $*" >&2; }
fail() { echo "selftest: FAIL $*" >&2; exit 1; }
expect_eq() { [[ "$2" == "$3" ]] || fail "$1: got '$2', expected '$3'"; pass "$1 = $3"; }

cleanup() { "$HERE/stop.sh" || true; }
trap cleanup EXIT

new_key() { echo "0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"; }
uint() { awk '{print $1}'; }   # cast prints "1000000 [1e6]"

eval "$("$HERE/start.sh" evm)"
eval "$("$HERE/start.sh" tempo)"
E="$ANVIL_EVM_RPC_URL"
T="$ANVIL_TEMPO_RPC_URL"

# ---- evm: deploy, mint, EIP-3009 -----------------------------------------
PAYER_KEY="$(new_key)"
PAYER="$("$CAST" wallet address --private-key "$PAYER_KEY")"
PAYEE="$("$CAST" wallet address --private-key "$(new_key)")"
eval "$("$HERE/deploy-token.sh" "$PAYER" 10000000)"
expect_eq "payer balance after mint" "$("$CAST" call "$EVM_TOKEN" "balanceOf(address)(uint256)" "$PAYER" --rpc-url "$E" | uint)" 10000000

if "$CAST" send "$EVM_TOKEN" "mint(address,uint256)" "$PAYER" 1 --rpc-url "$E" \
     --private-key 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d >/dev/null 2>&1; then
  fail "mint by a non-owner succeeded"
fi
pass "mint by a non-owner reverts"

NONCE="0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
VALID_BEFORE=$(( $(date +%s) + 3600 ))
TYPED="$(mktemp "${TMPDIR:-/tmp}/mpp-chain-typed.XXXXXX")"
trap 'rm -f "$TYPED"; cleanup' EXIT
cat >"$TYPED" <<EOF
{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "TransferWithAuthorization": [
      {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
      {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
      {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}
    ]
  },
  "primaryType": "TransferWithAuthorization",
  "domain": {"name": "Test USD", "version": "2", "chainId": 31337, "verifyingContract": "$EVM_TOKEN"},
  "message": {"from": "$PAYER", "to": "$PAYEE", "value": "2500000", "validAfter": "0",
              "validBefore": "$VALID_BEFORE", "nonce": "$NONCE"}
}
EOF
SIG="$("$CAST" wallet sign --private-key "$PAYER_KEY" --data --from-file "$TYPED")"
TWA="transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
# Relayed by dev account 1: the payer holds no ETH at all.
"$CAST" send "$EVM_TOKEN" "$TWA" "$PAYER" "$PAYEE" 2500000 0 "$VALID_BEFORE" "$NONCE" "$SIG" \
  --rpc-url "$E" --private-key 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d \
  >/dev/null || fail "transferWithAuthorization reverted"
pass "transferWithAuthorization(bytes) relayed"
expect_eq "payer balance" "$("$CAST" call "$EVM_TOKEN" "balanceOf(address)(uint256)" "$PAYER" --rpc-url "$E" | uint)" 7500000
expect_eq "payee balance" "$("$CAST" call "$EVM_TOKEN" "balanceOf(address)(uint256)" "$PAYEE" --rpc-url "$E" | uint)" 2500000
expect_eq "authorizationState" "$("$CAST" call "$EVM_TOKEN" "authorizationState(address,bytes32)(bool)" "$PAYER" "$NONCE" --rpc-url "$E")" true
used_topic="$("$CAST" keccak "AuthorizationUsed(address,bytes32)")"
logs="$("$CAST" logs --from-block 0 --address "$EVM_TOKEN" "$used_topic" --rpc-url "$E")"
[[ "${logs,,}" == *"${NONCE,,}"* ]] || fail "no AuthorizationUsed event for the nonce"
pass "AuthorizationUsed emitted"
if "$CAST" call "$EVM_TOKEN" "$TWA" "$PAYER" "$PAYEE" 2500000 0 "$VALID_BEFORE" "$NONCE" "$SIG" \
     --rpc-url "$E" >/dev/null 2>&1; then
  fail "replay of a used authorization did not revert"
fi
pass "replay reverts"

# ---- tempo: fund a fresh key with pathUSD and spend from it ---------------
PATH_USD=0x20c0000000000000000000000000000000000000
expect_eq "pathUSD decimals" "$("$CAST" call "$PATH_USD" "decimals()(uint8)" --rpc-url "$T")" 6
FRESH_KEY="$(new_key)"
FRESH="$("$CAST" wallet address --private-key "$FRESH_KEY")"
"$CAST" send "$PATH_USD" "transfer(address,uint256)" "$FRESH" 5000000 \
  --rpc-url "$T" --private-key "$DEV0_PRIVATE_KEY" >/dev/null || fail "pathUSD funding transfer failed"
expect_eq "fresh key pathUSD balance" "$("$CAST" call "$PATH_USD" "balanceOf(address)(uint256)" "$FRESH" --rpc-url "$T" | uint)" 5000000
# The fresh key holds only pathUSD, so it must name pathUSD as its fee token.
"$CAST" send "$PATH_USD" "transfer(address,uint256)" "$DEV0_ADDRESS" 1000000 --tempo.fee-token "$PATH_USD" \
  --rpc-url "$T" --private-key "$FRESH_KEY" >/dev/null || fail "spending from the fresh key failed"
left="$("$CAST" call "$PATH_USD" "balanceOf(address)(uint256)" "$FRESH" --rpc-url "$T" | uint)"
(( left < 4000000 && left > 3990000 )) || fail "fresh key balance after paying 1000000 + fee: $left"
pass "fresh key paid 1000000 pathUSD plus a fee of $(( 4000000 - left )) in pathUSD"

echo "selftest: ok" >&2

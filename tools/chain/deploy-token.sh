#!/usr/bin/env bash
# Deploys the EIP-3009 test token (contracts/Eip3009Token.sol) to the plain
# anvil that start.sh evm started, compiling it first if needed.
#
#   eval "$(tools/chain/start.sh evm)"
#   eval "$(tools/chain/deploy-token.sh)"                  # export EVM_TOKEN=0x…
#   eval "$(tools/chain/deploy-token.sh 0xPayer 1000000)"  # ... and mint to 0xPayer
#
# Arguments: optional ADDRESS AMOUNT pairs to mint right after deployment
# (AMOUNT in base units; the token has 6 decimals).
# stdout carries only `export EVM_TOKEN=0x…`; progress and errors go to stderr.
# The owner (the only minter) is the deployer, by default anvil dev account 0,
# so on a fresh chain the token lands at 0x5FbDB2315678afecb367f032d93F642f64180aa3.
#
# Environment:
#   ANVIL_EVM_RPC_URL       the chain (required)
#   DEPLOYER_PRIVATE_KEY    deployer/owner key (default: anvil dev account 0)
#   ANVIL_BIN, CAST_BIN     as for start.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

RPC="${ANVIL_EVM_RPC_URL:-}"
[[ -n "$RPC" ]] || die "ANVIL_EVM_RPC_URL is not set (eval \"\$(tools/chain/start.sh evm)\" first)"
(( $# % 2 == 0 )) || die "usage: $0 [ADDRESS AMOUNT]..."
KEY="${DEPLOYER_PRIVATE_KEY:-$DEV0_PRIVATE_KEY}"

chain_ensure_installed

# ---- compile if the artifact is missing or older than its inputs -----------
ARTIFACT="$CHAIN_DIR/build/Eip3009Token.json"
needs_compile() {
  local src
  [[ -f "$ARTIFACT" ]] || return 0
  for src in "$CHAIN_DIR/contracts/Eip3009Token.sol" "$CHAIN_DIR/compile.mjs" "$CHAIN_DIR/package-lock.json"; do
    [[ "$src" -nt "$ARTIFACT" ]] && return 0
  done
  return 1
}
if needs_compile; then
  node "$CHAIN_DIR/compile.mjs" || die "compile.mjs failed"
fi

BYTECODE="$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).bytecode)' "$ARTIFACT")"
[[ "$BYTECODE" =~ ^0x[0-9a-fA-F]+$ ]] || die "no bytecode in $ARTIFACT"

# ---- deploy ----------------------------------------------------------------
receipt="$("$CAST" send --rpc-url "$RPC" --private-key "$KEY" --json --create "$BYTECODE")" \
  || die "deployment transaction failed"
TOKEN="$(node -e '
  const r = JSON.parse(process.argv[1]);
  if (r.status !== "0x1" || !r.contractAddress) process.exit(1);
  process.stdout.write(r.contractAddress);
' "$receipt")" || die "deployment did not succeed: $receipt"
TOKEN="$("$CAST" to-check-sum-address "$TOKEN")"

[[ "$("$CAST" code "$TOKEN" --rpc-url "$RPC")" != 0x ]] || die "no code at $TOKEN"
name="$("$CAST" call "$TOKEN" "name()(string)" --rpc-url "$RPC")"
[[ "$name" == '"Test USD"' ]] || die "unexpected name() at $TOKEN: $name"
say "Eip3009Token deployed at $TOKEN on $RPC"

# ---- optional mints ----------------------------------------------------------
while (( $# >= 2 )); do
  to="$1" amount="$2"
  shift 2
  "$CAST" send "$TOKEN" "mint(address,uint256)" "$to" "$amount" \
    --rpc-url "$RPC" --private-key "$KEY" >/dev/null \
    || die "mint($to, $amount) failed"
  say "minted $amount to $to (balance $("$CAST" call "$TOKEN" "balanceOf(address)(uint256)" "$to" --rpc-url "$RPC"))"
done

printf 'export EVM_TOKEN=%q\n' "$TOKEN"

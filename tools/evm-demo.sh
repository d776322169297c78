#!/usr/bin/env bash
# Pays an example server with an EIP-3009 stablecoin authorization on a local
# EVM chain: the stock mppx client signs it, the server relays it on chain,
# and the on-chain balances are printed.
#
#   tools/evm-demo.sh            # the Rocket example
#   tools/evm-demo.sh actix      # the Actix-web example
#
# Everything runs on 127.0.0.1: plain anvil with our EIP-3009 test token
# (tools/chain), the example built with cargo, and mppx 0.11 (tools/mppx).
# Stops what it started on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-rocket}" in
  rocket) EXAMPLE=rocket-shop; PORT_VAR=ROCKET_PORT ;;
  actix) EXAMPLE=actix-shop; PORT_VAR=PORT ;;
  *) echo "usage: $0 [rocket|actix]" >&2; exit 2 ;;
esac
# anvil dev accounts (the well-known `test … junk` mnemonic): 0 deployed the
# token and mints it; 8 relays authorizations and pays their gas.
OWNER_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
RELAYER_KEY=0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97

[ -x tools/mppx/node_modules/.bin/mppx ] || npm ci --prefix tools/mppx --no-audit --no-fund >&2
eval "$(tools/chain/start.sh evm)"
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  tools/chain/stop.sh evm || true
}
trap cleanup EXIT
eval "$(tools/chain/deploy-token.sh)"
RPC="$ANVIL_EVM_RPC_URL"
CAST=tools/chain/node_modules/.bin/cast

new_key() { "$CAST" wallet new --json | python3 -c 'import json,sys; w=json.load(sys.stdin)[0]; print(w["private_key"], w["address"])'; }
balance() { "$CAST" call --rpc-url "$RPC" "$EVM_TOKEN" "balanceOf(address)(uint256)" "$1" | cut -d' ' -f1; }

read -r _ RECIPIENT < <(new_key)
read -r PAYER_KEY PAYER < <(new_key)
"$CAST" send --rpc-url "$RPC" --private-key "$OWNER_KEY" "$EVM_TOKEN" \
  "mint(address,uint256)" "$PAYER" 1000000 >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> cargo build -p $EXAMPLE" >&2
cargo build -q -p "$EXAMPLE"
env "$PORT_VAR=$PORT" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=critical MPP_REALM=localhost \
  EVM_RECIPIENT="$RECIPIENT" EVM_RPC_URL="$RPC" EVM_CHAIN_ID=31337 EVM_TOKEN="$EVM_TOKEN" \
  EVM_RELAYER_KEY="$RELAYER_KEY" "target/debug/$EXAMPLE" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
URL="http://127.0.0.1:$PORT/rate"

echo "==> $EXAMPLE on port $PORT; token $EVM_TOKEN; payer $PAYER holds $(balance "$PAYER"), recipient $RECIPIENT holds $(balance "$RECIPIENT")"
echo "==> mppx --config tools/mppx/evm.config.mjs $URL"
MPPX_PRIVATE_KEY="$PAYER_KEY" MPPX_EVM_TOKEN_NAME="Test USD" MPPX_EVM_TOKEN_VERSION=2 \
  tools/mppx/node_modules/.bin/mppx --config tools/mppx/evm.config.mjs "$URL" -v
echo
echo "    payer balance: $(balance "$PAYER"), recipient balance: $(balance "$RECIPIENT") (token base units, 6 decimals)"

#!/usr/bin/env bash
# Pays an example server on a local Tempo chain with the stock mppx client,
# in pull mode (mppx signs, the server broadcasts) and in push mode (mppx
# broadcasts, the server checks the hash), and prints the on-chain balances.
#
#   tools/tempo-demo.sh            # the Rocket example
#   tools/tempo-demo.sh actix      # the Actix-web example
#
# Everything runs on 127.0.0.1: anvil in Tempo mode (tools/chain), the example
# built with cargo, and mppx 0.11 (tools/mppx). Stops what it started on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-rocket}" in
  rocket) EXAMPLE=rocket-shop; PORT_VAR=ROCKET_PORT ;;
  actix) EXAMPLE=actix-shop; PORT_VAR=PORT ;;
  *) echo "usage: $0 [rocket|actix]" >&2; exit 2 ;;
esac
PATH_USD=0x20c0000000000000000000000000000000000000
# anvil dev account 9 (the well-known `test … junk` mnemonic) funds payers.
FUNDER_KEY=0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6

[ -x tools/mppx/node_modules/.bin/mppx ] || npm ci --prefix tools/mppx --no-audit --no-fund >&2
eval "$(tools/chain/start.sh tempo)"
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  tools/chain/stop.sh tempo || true
}
trap cleanup EXIT
RPC="$ANVIL_TEMPO_RPC_URL"
CAST=tools/chain/node_modules/.bin/cast
MPPX=tools/mppx/node_modules/.bin/mppx

new_key() { "$CAST" wallet new --json | python3 -c 'import json,sys; w=json.load(sys.stdin)[0]; print(w["private_key"], w["address"])'; }
balance() { "$CAST" call --rpc-url "$RPC" "$PATH_USD" "balanceOf(address)(uint256)" "$1" | cut -d' ' -f1; }
funded_payer() {
  read -r key address < <(new_key)
  "$CAST" send --rpc-url "$RPC" --private-key "$FUNDER_KEY" "$PATH_USD" \
    "transfer(address,uint256)" "$address" 5000000 >/dev/null
  echo "$key"
}

read -r _ RECIPIENT < <(new_key)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> cargo build -p $EXAMPLE" >&2
cargo build -q -p "$EXAMPLE"
env "$PORT_VAR=$PORT" ROCKET_ADDRESS=127.0.0.1 ROCKET_LOG_LEVEL=critical \
  MPP_REALM=localhost TEMPO_RECIPIENT="$RECIPIENT" TEMPO_RPC_URL="$RPC" TEMPO_CHAIN_ID=1337 \
  "target/debug/$EXAMPLE" >/dev/null 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
URL="http://127.0.0.1:$PORT/weather?city=Porto"

echo "==> $EXAMPLE on port $PORT; Tempo payments go to $RECIPIENT (balance $(balance "$RECIPIENT"))"
echo "==> pull mode: MPPX_PRIVATE_KEY=<fresh payer> mppx $URL --rpc-url $RPC"
MPPX_PRIVATE_KEY="$(funded_payer)" "$MPPX" "$URL" --rpc-url "$RPC" -v
echo
echo "    recipient balance: $(balance "$RECIPIENT") pathUSD base units"
echo "==> push mode: mppx --config tools/mppx/tempo-push.config.mjs $URL"
MPPX_PRIVATE_KEY="$(funded_payer)" MPPX_RPC_URL="$RPC" \
  "$MPPX" --config tools/mppx/tempo-push.config.mjs "$URL" -v
echo
echo "    recipient balance: $(balance "$RECIPIENT") pathUSD base units"

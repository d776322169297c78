#!/usr/bin/env bash
# Starts a local anvil chain on 127.0.0.1 for tests.
#
#   eval "$(tools/chain/start.sh tempo)"   # anvil --network tempo --chain-id 1337
#   eval "$(tools/chain/start.sh evm)"     # plain anvil, chain id 31337
#   ... tests use $ANVIL_TEMPO_RPC_URL / $ANVIL_EVM_RPC_URL ...
#   tools/chain/stop.sh
#
# stdout carries only `export NAME=value` lines; progress and errors go to
# stderr. MODE=tempo exports ANVIL_TEMPO_RPC_URL, ANVIL_TEMPO_PID and
# ANVIL_TEMPO_DIR; MODE=evm the same with EVM. Each run starts its own anvil
# with its own temp dir (anvil.log, anvil.pid), so parallel runs do not clash.
# Arguments after MODE are passed on to anvil (e.g. --block-time 1).
#
# Tempo mode mines one block right after start: anvil 1.7.1 in tempo mode does
# not take the first payment transaction before a block exists.
#
# Environment (all optional):
#   ANVIL_PORT      port to listen on (default: a free one, chosen by anvil)
#   ANVIL_BIN       anvil binary (default: the npm-pinned one; npm ci runs once)
#   CAST_BIN        cast binary (default: the npm-pinned one)
#   CHAIN_TIMEOUT   seconds to wait for eth_chainId to answer (default: 30)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { echo "usage: $0 tempo|evm [anvil args...]" >&2; exit 2; }
(( $# >= 1 )) || usage
MODE="$1"
shift
case "$MODE" in
  tempo) VAR=TEMPO; CHAIN_ID=1337; MODE_ARGS=(--network tempo --chain-id "$CHAIN_ID") ;;
  evm) VAR=EVM; CHAIN_ID=31337; MODE_ARGS=(--chain-id "$CHAIN_ID") ;;
  *) usage ;;
esac

chain_ensure_installed

PORT="${ANVIL_PORT:-0}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( 10#$PORT > 65535 )); then
  die "bad ANVIL_PORT '$PORT'"
fi

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/mpp-chain-$MODE.XXXXXX")"
LOG="$RUN_DIR/anvil.log"

# --port 0 lets the kernel pick a free port at bind time (no probe-then-bind
# race); anvil then logs "Listening on 127.0.0.1:<port>".
nohup "$ANVIL" --host 127.0.0.1 --port "$PORT" "${MODE_ARGS[@]}" "$@" \
  </dev/null >"$LOG" 2>&1 &
PID=$!
echo "$PID" >"$RUN_DIR/anvil.pid"

fail_start() {
  echo "chain: error: $*" >&2
  echo "----- $LOG -----" >&2
  tail -n 50 "$LOG" >&2 2>/dev/null || true
  kill "$PID" 2>/dev/null || true
  echo "chain: log kept in $RUN_DIR" >&2
  exit 1
}

# Wait for the listening line, then for eth_chainId to give the chain id.
deadline=$(( $(date +%s) + CHAIN_TIMEOUT ))
URL=""
while :; do
  kill -0 "$PID" 2>/dev/null || fail_start "anvil ($MODE) exited during startup"
  if [[ -z "$URL" ]]; then
    port="$(sed -n 's/^Listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -n 1)"
    if [[ -n "$port" ]]; then URL="http://127.0.0.1:$port"; fi
  fi
  if [[ -n "$URL" ]]; then
    got="$("$CAST" chain-id --rpc-url "$URL" 2>/dev/null || true)"
    if [[ "$got" == "$CHAIN_ID" ]]; then
      break
    elif [[ -n "$got" ]]; then
      fail_start "anvil on $URL reports chain id $got, expected $CHAIN_ID"
    fi
  fi
  (( $(date +%s) < deadline )) || fail_start "anvil ($MODE) not answering after ${CHAIN_TIMEOUT}s"
  sleep 0.1
done

if [[ "$MODE" == tempo ]]; then
  "$CAST" rpc anvil_mine --rpc-url "$URL" >/dev/null 2>&1 \
    || fail_start "anvil_mine failed on $URL"
  block="$("$CAST" block-number --rpc-url "$URL" 2>/dev/null || true)"
  if ! [[ "$block" =~ ^[0-9]+$ ]] || (( block < 1 )); then
    fail_start "block number after anvil_mine is '$block', expected >= 1"
  fi
fi

say "anvil ($MODE, chain id $CHAIN_ID) pid $PID on $URL, log in $LOG"

printf 'export ANVIL_%s_RPC_URL=%q\n' "$VAR" "$URL"
printf 'export ANVIL_%s_PID=%q\n' "$VAR" "$PID"
printf 'export ANVIL_%s_DIR=%q\n' "$VAR" "$RUN_DIR"

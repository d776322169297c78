#!/usr/bin/env bash
# Stops what start.sh started:
#   tools/chain/stop.sh            # tempo and evm, where their variables are set
#   tools/chain/stop.sh tempo      # only that mode
# For each mode the PID comes from $ANVIL_<MODE>_PID, else from
# $ANVIL_<MODE>_DIR/anvil.pid; a mode with neither is skipped. Only processes
# that are anvil are signalled, so a stale PID that now belongs to something
# else is left alone. Removes $ANVIL_<MODE>_DIR (the log) unless CHAIN_KEEP=1.
set -euo pipefail

modes=("$@")
(( ${#modes[@]} > 0 )) || modes=(tempo evm)

# Is PID an anvil process? Judged by argv[0]'s file name.
ours() {
  local argv0=""
  IFS= read -r -d '' argv0 2>/dev/null <"/proc/$1/cmdline" || [[ -n "$argv0" ]] || return 1
  [[ "$(basename -- "$argv0")" == anvil* ]]
}

# Returns 1 only if PID runs but is not anvil (and so was left alone).
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  if ! ours "$pid"; then
    echo "chain: pid $pid is not anvil; left alone" >&2
    return 1
  fi
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

status=0
for mode in "${modes[@]}"; do
  case "$mode" in
    tempo) pid_var=ANVIL_TEMPO_PID; dir_var=ANVIL_TEMPO_DIR ;;
    evm) pid_var=ANVIL_EVM_PID; dir_var=ANVIL_EVM_DIR ;;
    *) echo "chain: unknown mode '$mode' (tempo|evm)" >&2; status=2; continue ;;
  esac
  pid="${!pid_var:-}"
  dir="${!dir_var:-}"
  if [[ -z "$pid" && -n "$dir" && -f "$dir/anvil.pid" ]]; then
    pid="$(<"$dir/anvil.pid")"
  fi
  if [[ -z "$pid" ]]; then
    continue
  fi
  if ! [[ "$pid" =~ ^[0-9]+$ ]]; then
    echo "chain: ignoring $pid_var='$pid'" >&2
    continue
  fi
  stop_pid "$pid" || continue
  if [[ -n "$dir" && "${CHAIN_KEEP:-0}" != 1 && -d "$dir" \
        && "$(basename "$dir")" == mpp-chain-"$mode".* ]]; then
    rm -rf "$dir"
  fi
done
exit "$status"

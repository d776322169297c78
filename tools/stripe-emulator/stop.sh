#!/usr/bin/env bash
# Stops what start.sh started:
#   tools/stripe-emulator/stop.sh            # uses $STRIPE_EMULATOR_PIDS
#   tools/stripe-emulator/stop.sh PID ...    # or the PIDs given
# Only processes that are this emulator's (localstripe or spt_shim.py) are
# signalled, so a stale PID that now belongs to something else is left alone.
# Removes $STRIPE_EMULATOR_DIR (logs, data) unless STRIPE_EMULATOR_KEEP=1.
set -uo pipefail

pids=("$@")
if (( ${#pids[@]} == 0 )); then
  read -r -a pids <<<"${STRIPE_EMULATOR_PIDS:-}"
fi
if (( ${#pids[@]} == 0 )); then
  echo "stripe-emulator: no PIDs (set STRIPE_EMULATOR_PIDS or pass them)" >&2
  exit 1
fi

ours() {
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *localstripe* || "$cmd" == *spt_shim.py* ]]
}

to_wait=()
for pid in "${pids[@]}"; do
  [[ "$pid" =~ ^[0-9]+$ ]] || { echo "stripe-emulator: ignoring '$pid'" >&2; continue; }
  if ! kill -0 "$pid" 2>/dev/null; then
    continue
  fi
  if ! ours "$pid"; then
    echo "stripe-emulator: pid $pid is not the emulator's; left alone" >&2
    continue
  fi
  kill -TERM "$pid" 2>/dev/null && to_wait+=("$pid")
done

for pid in "${to_wait[@]}"; do
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
done

dir="${STRIPE_EMULATOR_DIR:-}"
if [[ -n "$dir" && "${STRIPE_EMULATOR_KEEP:-0}" != 1 && -d "$dir" \
      && "$(basename "$dir")" == stripe-emulator.* ]]; then
  rm -rf "$dir"
fi
exit 0

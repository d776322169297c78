#!/usr/bin/env bash
# Starts the Stripe test emulator: localstripe plus spt_shim.py in front of it.
#
#   eval "$(tools/stripe-emulator/start.sh)"
#   ... tests use $STRIPE_API_BASE ...
#   tools/stripe-emulator/stop.sh
#
# stdout carries only `export NAME=value` lines; progress and errors go to
# stderr. Safe to run again: the venv is set up once (pinned localstripe), and
# each run starts its own independent localstripe + shim pair.
#
# Environment (all optional):
#   STRIPE_EMULATOR_PORT    port for the shim (default: a free port)
#   LOCALSTRIPE_PORT        port for localstripe (default: a free port)
#   STRIPE_EMULATOR_PYTHON  interpreter for the venv (default: python3.11,
#                           else python3)
#   STRIPE_EMULATOR_TIMEOUT seconds to wait for both to answer (default: 30)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
LOCALSTRIPE_VERSION="1.15.10"
CONSTRAINTS="$HERE/constraints.txt"
# The marker names the pin and the constraints, so changing either reinstalls.
MARKER="$VENV/.installed-localstripe-$LOCALSTRIPE_VERSION-$(cksum <"$CONSTRAINTS" | cut -d' ' -f1)"
TIMEOUT="${STRIPE_EMULATOR_TIMEOUT:-30}"

say() { echo "stripe-emulator: $*" >&2; }
die() { echo "stripe-emulator: error: $*" >&2; exit 1; }

# ---- (a) the venv, once -----------------------------------------------------
setup_venv() {
  if [[ -f "$MARKER" && -x "$VENV/bin/localstripe" ]]; then
    return 0
  fi
  local py="${STRIPE_EMULATOR_PYTHON:-}"
  if [[ -z "$py" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
  fi
  command -v "$py" >/dev/null 2>&1 || die "$py not found (set STRIPE_EMULATOR_PYTHON)"
  say "creating $VENV with $py and installing localstripe==$LOCALSTRIPE_VERSION"
  rm -rf "$VENV"
  if ! "$py" -m venv "$VENV" >&2; then
    rm -rf "$VENV"
    die "'$py -m venv $VENV' failed"
  fi
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check \
      -c "$CONSTRAINTS" "localstripe==$LOCALSTRIPE_VERSION" >&2; then
    rm -rf "$VENV"
    die "pip install localstripe==$LOCALSTRIPE_VERSION failed (see above)"
  fi
  "$VENV/bin/python" -c 'import aiohttp, localstripe' >&2 \
    || { rm -rf "$VENV"; die "localstripe installed but does not import"; }
  touch "$MARKER"
}

# Several test processes may call start.sh at once: one sets up the venv.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$HERE/.venv.lock"
  flock 9
  setup_venv
  flock -u 9
  exec 9>&-
else
  setup_venv
fi
PY="$VENV/bin/python"

# ---- (b) ports, temp dir, processes ----------------------------------------
free_port() {
  # A port free on both IPv4 and IPv6 (localstripe binds [::]).
  "$PY" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(('::', 0))
print(s.getsockname()[1])
s.close()
EOF
}

port_ok() {
  [[ "$1" =~ ^[0-9]+$ ]] && (( $1 > 0 && $1 < 65536 ))
}

LS_PORT="${LOCALSTRIPE_PORT:-$(free_port)}"
SHIM_PORT="${STRIPE_EMULATOR_PORT:-$(free_port)}"
while [[ -z "${STRIPE_EMULATOR_PORT:-}" && "$SHIM_PORT" == "$LS_PORT" ]]; do
  SHIM_PORT="$(free_port)"
done
port_ok "$LS_PORT" || die "bad LOCALSTRIPE_PORT '$LS_PORT'"
port_ok "$SHIM_PORT" || die "bad STRIPE_EMULATOR_PORT '$SHIM_PORT'"
[[ "$LS_PORT" != "$SHIM_PORT" ]] || die "localstripe and the shim cannot share port $LS_PORT"

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stripe-emulator.XXXXXX")"
mkdir -p "$RUN_DIR/tmp"
LS_LOG="$RUN_DIR/localstripe.log"
SHIM_LOG="$RUN_DIR/shim.log"

# localstripe keeps its data in $TMPDIR/localstripe.pickle: a TMPDIR of its
# own keeps this instance apart from any other.
TMPDIR="$RUN_DIR/tmp" nohup "$PY" -m localstripe --port "$LS_PORT" --from-scratch \
  </dev/null >"$LS_LOG" 2>&1 &
LS_PID=$!
nohup "$PY" "$HERE/spt_shim.py" --port "$SHIM_PORT" \
  --upstream "http://127.0.0.1:$LS_PORT" </dev/null >"$SHIM_LOG" 2>&1 &
SHIM_PID=$!

fail_start() {
  echo "stripe-emulator: error: $*" >&2
  for f in "$LS_LOG" "$SHIM_LOG"; do
    echo "----- $f -----" >&2
    tail -n 50 "$f" >&2 2>/dev/null || true
  done
  kill "$LS_PID" "$SHIM_PID" 2>/dev/null || true
  echo "stripe-emulator: logs kept in $RUN_DIR" >&2
  exit 1
}

# Wait until localstripe answers an authenticated call and the shim its health
# check; stop early if either process dies.
deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  kill -0 "$LS_PID" 2>/dev/null || fail_start "localstripe exited during startup"
  kill -0 "$SHIM_PID" 2>/dev/null || fail_start "spt_shim.py exited during startup"
  if "$PY" - "$LS_PORT" "$SHIM_PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
ls_port, shim_port = sys.argv[1], sys.argv[2]
req = urllib.request.Request('http://127.0.0.1:%s/v1/balance' % ls_port,
                             headers={'Authorization': 'Bearer sk_test_ready'})
urllib.request.urlopen(req, timeout=2).read()
body = urllib.request.urlopen('http://127.0.0.1:%s/_shim/health' % shim_port,
                              timeout=2).read()
sys.exit(0 if body.strip() == b'ok' else 1)
EOF
  then
    break
  fi
  (( $(date +%s) < deadline )) || fail_start "not answering after ${TIMEOUT}s (localstripe :$LS_PORT, shim :$SHIM_PORT)"
  sleep 0.2
done

say "localstripe pid $LS_PID on :$LS_PORT, shim pid $SHIM_PID on 127.0.0.1:$SHIM_PORT, logs in $RUN_DIR"

# ---- (c) what the caller evals ---------------------------------------------
BASE="http://127.0.0.1:$SHIM_PORT"
echo "export STRIPE_API_BASE=$BASE"
echo "export MPPX_STRIPE_SPT_URL=$BASE/v1/test_helpers/shared_payment/granted_tokens"
echo "export LOCALSTRIPE_URL=http://127.0.0.1:$LS_PORT"
echo "export STRIPE_EMULATOR_DIR=$RUN_DIR"
echo "export STRIPE_EMULATOR_PIDS=\"$LS_PID $SHIM_PID\""

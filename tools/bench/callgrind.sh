#!/usr/bin/env bash
# Instructions per request of one bench-server route, counted by callgrind
# (repeatable whatever else the machine does, unlike time):
#
#   tools/bench/callgrind.sh actix|rocket bare|headers|paid|metered [bare]
#
# The third argument `bare` runs the server with BENCH_MODE=bare (no gate;
# only /bare and /headers). Builds nothing: run `cargo build --release -p
# mpp-bench --bins` first. The server runs under valgrind with
# instrumentation off; after a warm-up (3 s of wrk) instrumentation is
# turned on for DURATION seconds of `wrk -c4` (default 8), then the profile
# is dumped to target/callgrind/ and the instructions per request printed.
# `callgrind_annotate <file>` shows where they go.
set -euo pipefail
fw=${1:?framework: actix or rocket} route=${2:?route: bare, headers, paid or metered} mode=${3:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
OUT_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/callgrind
DURATION=${DURATION:-8}
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh needs $tool" >&2; exit 1; }
done
mkdir -p "$OUT_DIR"
port=$((9100 + RANDOM % 500))
out=$OUT_DIR/$fw.$route${mode:+.$mode}
MPP_SECRET_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export MPP_SECRET_KEY MPP_CHALLENGE_TTL=3600 MPP_STORE_PREFIX= PORT=$port
[[ -n $mode ]] && export BENCH_MODE=$mode
rm -f "$out".*
valgrind --tool=callgrind --callgrind-out-file="$out.%p" --instr-atstart=no \
  "$BIN/bench-$fw" >"$out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$port/bare" && break
  sleep 0.2
done
header=()
if [[ $route == metered ]]; then
  header=(-H "Authorization: $("$BIN/bench-client" session "127.0.0.1:$port" /metered)")
fi
wrk -t1 -c4 -d3s "${header[@]}" "http://127.0.0.1:$port/$route" >/dev/null
callgrind_control -i on "$pid" >/dev/null
report=$(wrk -t1 -c4 -d"${DURATION}s" "${header[@]}" "http://127.0.0.1:$port/$route")
callgrind_control -d "$pid" >/dev/null
requests=$(awk '/requests in/ {print $1}' <<<"$report")
file=$(ls -t "$out".*.1 | head -1)
total=$(callgrind_annotate "$file" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$fw /$route${mode:+ ($mode mode)}: $requests requests, $((total / requests)) instructions per request ($file)"

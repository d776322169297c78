#!/usr/bin/env bash
# Load benchmark: the payment gate on Rocket and Actix-web side by side with
# the bare frameworks, the official Rust SDK (mpp-rs 0.18, axum) and the stock
# mppx Node server, all in one run on this machine. Writes the results table
# into docs/BENCHMARKS.md (between the bench.sh markers) and prints it.
#
#   scripts/bench.sh                 # build, run everything, update docs/BENCHMARKS.md
#   BENCH_DURATION=6 BENCH_CONNECTIONS=64 scripts/bench.sh
#
# What it measures, for Rocket and for Actix (tools/bench/server, release):
#   bare          the framework alone (BENCH_MODE=bare: no gate at all)
#   headers       the framework alone answering with the three headers a
#                 session spend adds (same sizes): the floor under a spend
#   free route    a plain route on the app that has the gate
#   402           an unpaid request to a #[paid] route: a fresh challenge minted
#   session spend one credit of a metered session (one static header), on the
#                 memory store, then SQLite, PostgreSQL and Redis when they open
#   paid retry    a fresh credential per request (pre-minted from the server's
#                 own 402s), settled by the bench-only instant test rail
# and the references minting 402s: mpp-rs's axum MppCharge extractor (tempo)
# beside a bare axum route (tools/bench/mpp-rs-axum), and mppx's
# Mppx.create + Mppx.toNodeListener beside a bare node:http route
# (tools/bench/mppx-server).
#
# Each server is pinned to one core and wrk to the other (taskset). Server CPU
# time per request is read from /proc/<pid>/stat around the measured run: one
# wrk core saturates near 120k req/s, so throughput alone cannot show the
# cost of a fast path. Only ratios measured in the same run are compared.
#
# Settings (environment):
#   BENCH_DURATION (6)        seconds per measured run (a metered session holds
#                             1,000,000 credits: keep DURATION x rate below it)
#   BENCH_WARMUP (2)          seconds of warm-up before each measured run
#   BENCH_CONNECTIONS (64)    wrk connections
#   BENCH_PAID_CREDENTIALS (150000)  credentials minted for each paid-retry run
#   BENCH_PAID_DURATION (3)   seconds of a paid-retry run (wrk counts its full
#                             duration even if the credentials run out first:
#                             then req/s is a lower bound, and the note says so)
#   BENCH_SERVER_CPU (0), BENCH_CLIENT_CPU (1)  cores for the server and wrk
#   BENCH_STORES (memory sqlite postgres redis)
#   BENCH_FRAMEWORKS (rocket actix)
#   BENCH_ROUNDS (3)          every run is repeated this many times (servers
#                             restarted); the table shows, per run, the round
#                             with the least server CPU per request (the one
#                             least disturbed by other work on the machine),
#                             and every round's CPU per request
#   BENCH_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/test)
#   BENCH_REDIS_URL (redis://127.0.0.1:6379)
#   BENCH_OUT (docs/BENCHMARKS.md; "-" to only print)
#   BENCH_SKIP_REFERENCES=1   leave out mpp-rs and mppx (no ratios against them)
#   CARGO_TARGET_DIR          where release builds go (default: target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-6}
WARMUP=${BENCH_WARMUP:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
PAID_CREDENTIALS=${BENCH_PAID_CREDENTIALS:-150000}
PAID_DURATION=${BENCH_PAID_DURATION:-3}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
STORES=${BENCH_STORES:-memory sqlite postgres redis}
FRAMEWORKS=${BENCH_FRAMEWORKS:-rocket actix}
ROUNDS=${BENCH_ROUNDS:-3}
POSTGRES_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
OUT=${BENCH_OUT:-docs/BENCHMARKS.md}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mpp-bench.XXXXXX")
RESULTS=$WORK/results.tsv
SERVER_PID=
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- tools ----
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
for tool in taskset curl cargo; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 1; }
done

log "building the bench servers (release)"
cargo build --release --locked -p mpp-bench --bins
BIN=$TARGET/release

REFERENCES=1
[[ ${BENCH_SKIP_REFERENCES:-} == 1 ]] && REFERENCES=0
if (( REFERENCES )); then
  log "building the mpp-rs reference (release, tools/bench/mpp-rs-axum)"
  cargo build --release --locked --manifest-path tools/bench/mpp-rs-axum/Cargo.toml
  log "installing the mppx reference (npm ci, tools/bench/mppx-server)"
  command -v node >/dev/null || { echo "bench.sh needs node (Node 20) for the mppx reference" >&2; exit 1; }
  npm ci --prefix tools/bench/mppx-server --no-audit --no-fund --loglevel=error >/dev/null
fi

export MPP_SECRET_KEY
MPP_SECRET_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
# Pre-minted credentials must outlive the run.
export MPP_CHALLENGE_TTL=3600
export MPP_STORE_PREFIX=

# -------------------------------------------------------------- servers ----
start_server() { # start_server PORT LOG COMMAND... (environment via env)
  local port=$1 logfile=$2
  shift 2
  taskset -c "$SERVER_CPU" "$@" >"$logfile" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/bare"; then
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=
      return 1
    fi
    sleep 0.1
  done
  echo "server on port $port did not answer within 30 s" >&2
  stop_server
  return 1
}

stop_server() {
  if [[ -n ${SERVER_PID:-} ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

cpu_ticks() { # utime + stime of the whole process, in clock ticks
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# wrk's latency ("512.00us", "1.23ms", "2.00s") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) u = n; else if (v ~ /ms$/) u = n * 1000; else if (v ~ /s$/) u = n * 1000000; else u = n
    printf "%.0f", u
  }'
}

# measure KEY LABEL URL [wrk arguments...]: warm-up, then a measured run;
# appends KEY, LABEL, req/s, p50 µs, p99 µs, CPU µs/request, non-2xx,
# requests, load and a note to the results.
measure() {
  local key=$1 label=$2 url=$3
  shift 3
  # wrk options, then the URL, then the script's arguments (after `--`).
  local wrk_args=() script_args=()
  while (($#)); do
    if [[ $1 == -- ]]; then
      script_args=("$@")
      break
    fi
    wrk_args+=("$1")
    shift
  done
  local note=${NOTE:-}
  if [[ -z ${NO_WARMUP:-} ]]; then
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "${wrk_args[@]}" "$url" "${script_args[@]}" >/dev/null 2>&1 || true
  fi
  local load before after output
  load=$(load1)
  before=$(cpu_ticks "$SERVER_PID")
  output=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${wrk_args[@]}" "$url" "${script_args[@]}" 2>&1) || true
  after=$(cpu_ticks "$SERVER_PID")
  echo "$output" >"$WORK/$key.wrk"
  local requests rps p50 p99 non2xx errors
  requests=$(awk '/requests in/ {print $1; exit}' <<<"$output")
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2; exit}' <<<"$output")
  p50=$(to_us "$(awk '$1 == "50%" {print $2; exit}' <<<"$output")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2; exit}' <<<"$output")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF; exit}' <<<"$output")
  errors=$(awk '/Socket errors:/ {print; exit}' <<<"$output")
  non2xx=${non2xx:-0}
  [[ -n $errors ]] && note="${note:+$note; }wrk ${errors#*Socket errors: }"
  if [[ -z $requests || -z $rps || $requests == 0 ]]; then
    echo "wrk produced no result for $label:" >&2
    echo "$output" >&2
    printf '%s\t%s\t\t\t\t\t\t\t%s\t%s\n' "$key" "$label" "$load" "no result" >>"$RESULTS"
    return 0
  fi
  local cpu
  cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.2f", t / hz * 1000000 / n}')
  local paid_line
  paid_line=$(grep -E '^paid=' <<<"$output" || true)
  [[ -n $paid_line ]] && note="${note:+$note; }$paid_line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$key" "$label" "$rps" "$p50" "$p99" "$cpu" "$non2xx" "$requests" "$load" "$note" >>"$RESULTS"
  printf '%-34s %8s req/s  p50 %6s us  p99 %7s us  %7s us CPU/req  non-2xx %s %s\n' \
    "$label" "$rps" "$p50" "$p99" "$cpu" "$non2xx" "$note" >&2
}

skip() { # skip KEY LABEL REASON
  printf '%s\t%s\t\t\t\t\t\t\t%s\t%s\n' "$1" "$2" "$(load1)" "skipped: $3" >>"$RESULTS"
  printf '%-34s skipped: %s\n' "$2" "$3" >&2
}

store_spec() {
  case $1 in
    memory) echo memory ;;
    sqlite) echo "sqlite://$WORK/bench-$2.db" ;;
    postgres) echo "$POSTGRES_URL" ;;
    redis) echo "$REDIS_URL" ;;
  esac
}

store_label() {
  case $1 in
    memory) echo "memory" ;;
    sqlite) echo "SQLite" ;;
    postgres) echo "PostgreSQL" ;;
    redis) echo "Redis" ;;
  esac
}

# A session for a run, bought from the server's own /metered route.
session_header() {
  taskset -c "$CLIENT_CPU" "$BIN/bench-client" session "127.0.0.1:$1" /metered
}

bench_framework() { # bench_framework NAME PORT
  local fw=$1 port=$2 Fw
  Fw=$( [[ $fw == rocket ]] && echo Rocket || echo Actix)
  local bin=$BIN/bench-$fw url=http://127.0.0.1:$port
  local -a env_common=(env PORT="$port" BENCH_WORKERS=1)

  log "$Fw: bare framework"
  start_server "$port" "$WORK/$fw-bare.log" "${env_common[@]}" BENCH_MODE=bare "$bin" \
    || { cat "$WORK/$fw-bare.log" >&2; exit 1; }
  measure "$fw.bare" "$Fw bare route (no gate)" "$url/bare"
  measure "$fw.headers" "$Fw bare route + a spend's 3 headers (no gate)" "$url/headers"
  stop_server

  local store
  for store in $STORES; do
    local spec label
    spec=$(store_spec "$store" "$fw")
    label=$(store_label "$store")
    log "$Fw: gate on the $label store"
    if ! start_server "$port" "$WORK/$fw-$store.log" "${env_common[@]}" MPP_STORE="$spec" MPP_STORE_PREFIX="mppbench_" "$bin"; then
      local reason
      reason=$(grep -m1 -iE 'error|MPP_STORE|feature' "$WORK/$fw-$store.log" | cut -c1-160)
      skip "$fw.spend.$store" "$Fw session spend ($label)" "${reason:-the server did not start with MPP_STORE=$spec}"
      continue
    fi
    if [[ $store == memory ]]; then
      measure "$fw.free" "$Fw free route (gate attached)" "$url/bare"
      measure "$fw.402" "$Fw 402 (unpaid #[paid] route)" "$url/paid"
    fi
    local header header2
    # One session for the warm-up, a fresh one for the measured run.
    if header=$(session_header "$port") && header2=$(session_header "$port"); then
      taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Authorization: $header" "$url/metered" >/dev/null 2>&1 || true
      NO_WARMUP=1 NOTE="" measure "$fw.spend.$store" "$Fw session spend ($label)" "$url/metered" -H "Authorization: $header2"
    else
      skip "$fw.spend.$store" "$Fw session spend ($label)" "could not buy a session"
    fi
    if [[ $store == memory ]]; then
      log "$Fw: minting $PAID_CREDENTIALS credentials from the server's 402s"
      local creds=$WORK/$fw.creds
      if taskset -c "$CLIENT_CPU" "$BIN/bench-client" credentials "127.0.0.1:$port" /paid "$PAID_CREDENTIALS" "$creds"; then
        DURATION=$PAID_DURATION NO_WARMUP=1 measure "$fw.paid" "$Fw paid retry (instant test rail)" "$url/paid" \
          -s "$ROOT/tools/bench/wrk/paid.lua" -- "$creds" /paid 1
        rm -f "$creds"
      else
        skip "$fw.paid" "$Fw paid retry (instant test rail)" "could not mint credentials"
      fi
    fi
    stop_server
  done
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

for round in $(seq 1 "$ROUNDS"); do
log "round $round of $ROUNDS"
for fw in $FRAMEWORKS; do
  case $fw in
    rocket) bench_framework rocket 8091 ;;
    actix) bench_framework actix 8092 ;;
    *) echo "BENCH_FRAMEWORKS: unknown framework $fw" >&2; exit 1 ;;
  esac
done

if (( REFERENCES )); then
  log "mpp-rs 0.18 (axum, MppCharge, tempo)"
  if start_server 8093 "$WORK/mpp-rs.log" env PORT=8093 "$TARGET/release/mpp-rs-axum-bench"; then
    measure "axum.bare" "axum bare route" "http://127.0.0.1:8093/bare"
    measure "mpprs.402" "mpp-rs 402 (axum MppCharge, tempo)" "http://127.0.0.1:8093/paid"
    stop_server
  else
    cat "$WORK/mpp-rs.log" >&2
    exit 1
  fi
  log "mppx 0.11.0 (Mppx.create + Mppx.toNodeListener, tempo)"
  if start_server 8094 "$WORK/mppx.log" env PORT=8094 node tools/bench/mppx-server/server.mjs; then
    measure "node.bare" "node:http bare route" "http://127.0.0.1:8094/bare"
    measure "mppx.402" "mppx 402 (toNodeListener, tempo)" "http://127.0.0.1:8094/paid"
    stop_server
  else
    cat "$WORK/mppx.log" >&2
    exit 1
  fi
fi
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report ----
COMMAND="scripts/bench.sh"
for var in BENCH_DURATION BENCH_WARMUP BENCH_CONNECTIONS BENCH_PAID_CREDENTIALS BENCH_PAID_DURATION BENCH_STORES BENCH_FRAMEWORKS BENCH_ROUNDS BENCH_SKIP_REFERENCES; do
  [[ -n ${!var:-} ]] && COMMAND="$var=${!var} $COMMAND"
done

STARTED=$STARTED COMMAND=$COMMAND ROUNDS=$ROUNDS DURATION=$DURATION PAID_DURATION=$PAID_DURATION WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS \
SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU LOAD_START=$LOAD_START LOAD_END=$LOAD_END \
  python3 - "$RESULTS" "$WORK/section.md" <<'PY'
import os
import re
import sys

env = os.environ

rows = {}
rounds = {}
order = []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    f += [""] * (10 - len(f))
    key, label, rps, p50, p99, cpu, non2xx, requests, load, note = f[:10]
    num = lambda s: float(s) if s else None
    row = dict(label=label, rps=num(rps), p50=num(p50), p99=num(p99), cpu=num(cpu),
               non2xx=int(non2xx) if non2xx else 0, load=load, note=note)
    if key not in rows:
        order.append(key)
        rounds[key] = []
    if row["cpu"] is not None:
        rounds[key].append(row["cpu"])
    # The round least disturbed by other work: the least CPU per request.
    best = rows.get(key)
    if best is None or (row["cpu"] is not None and (best["cpu"] is None or row["cpu"] < best["cpu"])):
        rows[key] = row

def ms(us):
    return "" if us is None else f"{us / 1000:.2f}"

def ratio(a, b, fmt="{:.2f}×"):
    if a is None or b is None or b == 0:
        return ""
    return fmt.format(a / b)

def get(key, field):
    return rows.get(key, {}).get(field)

out = []
out.append(f"Run {env['STARTED']} with `{env['COMMAND']}` "
           f"({env['ROUNDS']} rounds; {env['DURATION']} s per run ({env['PAID_DURATION']} s for paid retries) after {env['WARMUP']} s of warm-up, {env['CONNECTIONS']} connections, "
           f"server on core {env['SERVER_CPU']}, wrk on core {env['CLIENT_CPU']}). "
           f"Load averages (1, 5, 15 min): {env['LOAD_START']} at the start, {env['LOAD_END']} at the end.")
out.append("")
out.append("| run | req/s | p50 ms | p99 ms | server CPU µs/req | vs bare (req/s) | CPU µs vs bare | vs mpp-rs 402 | vs mppx 402 | load | CPU µs/req, every round | notes |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for key in order:
    r = rows[key]
    fw = key.split(".")[0]
    bare = {"rocket": "rocket.bare", "actix": "actix.bare", "mpprs": "axum.bare", "axum": "axum.bare",
            "mppx": "node.bare", "node": "node.bare"}.get(fw)
    vs_bare = "" if key == bare else ratio(r["rps"], get(bare, "rps"))
    cpu_delta = ""
    if key != bare and r["cpu"] is not None and get(bare, "cpu") is not None:
        cpu_delta = f"{r['cpu'] - get(bare, 'cpu'):+.2f}"
    is402 = key.endswith(".402")
    vs_rs = ratio(r["rps"], get("mpprs.402", "rps")) if is402 and key != "mpprs.402" else ""
    vs_mppx = ratio(r["rps"], get("mppx.402", "rps"), "{:.1f}×") if is402 and key != "mppx.402" else ""
    rps = "" if r["rps"] is None else f"{r['rps']:,.0f}"
    cpu = "" if r["cpu"] is None else f"{r['cpu']:.2f}"
    note = r["note"]
    m = re.search(r"sent=(\d+) of (\d+)", note)
    if m and m.group(1) == m.group(2):
        note += " (credentials ran out before the end: req/s is a lower bound)"
    if r["non2xx"] and not key.endswith(".402"):
        note = (note + "; " if note else "") + f"{r['non2xx']} non-2xx"
    every = ", ".join(f"{c:.2f}" for c in rounds[key])
    out.append(f"| {r['label']} | {rps} | {ms(r['p50'])} | {ms(r['p99'])} | {cpu} | {vs_bare} | {cpu_delta} | {vs_rs} | {vs_mppx} | {r['load']} | {every} | {note} |")

out.append("")
out.append("Targets (issue 8), from this run:")
out.append("")
def check(name, ok, detail):
    if ok is None:
        out.append(f"- {name}: not measured ({detail})")
    else:
        out.append(f"- {name}: **{'met' if ok else 'MISSED'}** ({detail})")

def frac(a, b):
    return None if a is None or b in (None, 0) else a / b

x = frac(get("rocket.402", "rps"), get("rocket.bare", "rps"))
check("Rocket 402 ≥ 85% of bare Rocket", None if x is None else x >= 0.85, "n/a" if x is None else f"{x:.0%}")
x = frac(get("actix.402", "rps"), get("mpprs.402", "rps"))
check("Actix 402 ≥ 1.5× mpp-rs's 402", None if x is None else x >= 1.5, "n/a" if x is None else f"{x:.2f}×")
a, b = get("actix.402", "cpu"), get("actix.bare", "cpu")
d = None if a is None or b is None else a - b
check("Actix 402 CPU/request within 2 µs of bare Actix", None if d is None else d <= 2.0,
      "n/a" if d is None else f"{a:.2f} vs {b:.2f} µs: {d:+.2f} µs")
for fw, name in (("rocket", "Rocket"), ("actix", "Actix")):
    x = frac(get(f"{fw}.402", "rps"), get("mppx.402", "rps"))
    check(f"{name} 402 ≥ 25× mppx's 402", None if x is None else x >= 25, "n/a" if x is None else f"{x:.1f}×")
for fw, name in (("rocket", "Rocket"), ("actix", "Actix")):
    x = frac(get(f"{fw}.spend.memory", "rps"), get(f"{fw}.bare", "rps"))
    check(f"{name} memory-store session spend ≥ 85% of bare", None if x is None else x >= 0.85,
          "n/a" if x is None else f"{x:.0%}")
out.append("")
out.append("The floor under a session spend, from this run: the bare framework answering with the same three headers (no gate):")
out.append("")
for fw, name in (("rocket", "Rocket"), ("actix", "Actix")):
    floor, bare, spend = get(f"{fw}.headers", "rps"), get(f"{fw}.bare", "rps"), get(f"{fw}.spend.memory", "rps")
    fc, bc, sc = get(f"{fw}.headers", "cpu"), get(f"{fw}.bare", "cpu"), get(f"{fw}.spend.memory", "cpu")
    if None in (floor, bare, spend, fc, bc, sc):
        out.append(f"- {name}: not measured")
        continue
    out.append(f"- {name}: the headers alone serve {floor / bare:.0%} of bare (+{fc - bc:.2f} µs CPU); "
               f"the memory-store spend serves {spend / floor:.0%} of that floor (+{sc - fc:.2f} µs CPU for the gate itself)")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY

mkdir -p "$TARGET"
cp "$RESULTS" "$TARGET/mpp-bench-results.tsv"
cat "$WORK/section.md"
log "every round's raw results: $TARGET/mpp-bench-results.tsv"

if [[ $OUT != - ]]; then
  python3 - "$OUT" "$WORK/section.md" <<'PY'
import sys
path, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- bench.sh:begin -->", "<!-- bench.sh:end -->"
text = open(path).read()
block = f"{begin}\n{section}{end}"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + block + tail
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  log "results written to $OUT"
fi

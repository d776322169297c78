#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails on any crash.
#
#   fuzz/run.sh                    # each target 60 s
#   FUZZ_SECONDS=600 fuzz/run.sh   # longer
#   fuzz/run.sh challenge price    # some targets only
#
# cargo-fuzz needs nightly-only compiler flags (sanitizer coverage); on the
# stable toolchain RUSTC_BOOTSTRAP=1 enables them. cargo-fuzz itself is
# installed from crates.io at a pinned version if it is missing.
#
# Each run starts from the seed corpus kept in the repository
# (fuzz/corpus/<target>, read only) and writes what it discovers to a
# scratch corpus (fuzz/target/corpus-work/<target>, not versioned). A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script; turn it
# into a regression test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION="0.13.2"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(challenge credential session price)
fi
[[ "$SECONDS_EACH" =~ ^[0-9]+$ && "$SECONDS_EACH" -gt 0 ]] \
  || { echo "fuzz: FUZZ_SECONDS must be a positive number of seconds, not '$SECONDS_EACH'" >&2; exit 1; }

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "==> cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

export RUSTC_BOOTSTRAP=1
echo "==> cargo fuzz build -O (${TARGETS[*]})"
for target in "${TARGETS[@]}"; do
  cargo fuzz build -O "$target"
done

failed=()
for target in "${TARGETS[@]}"; do
  [[ -d "corpus/$target" ]] || { echo "fuzz: no seed corpus at fuzz/corpus/$target" >&2; exit 1; }
  work="target/corpus-work/$target"
  mkdir -p "$work" "artifacts/$target"
  echo "==> fuzz $target for ${SECONDS_EACH}s"
  # -max_len: headers above the parsers' 32 KiB limit are refused whole.
  # libFuzzer reports every new input; that goes to a log, and only its
  # summary (or, after a crash, its end) is shown.
  log="target/fuzz-$target.log"
  if cargo fuzz run -O "$target" "$work" "corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=40000 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
    grep -E '^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  else
    failed+=("$target")
    tail -n 80 "$log"
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "==> fuzz: no crash in ${TARGETS[*]} (${SECONDS_EACH}s each)"

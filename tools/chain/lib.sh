# shellcheck shell=bash
# Shared by start.sh and deploy-token.sh (sourced, not run). Defines CHAIN_DIR,
# ANVIL, CAST, say/die and chain_ensure_installed.
#
# Environment (optional):
#   ANVIL_BIN, CAST_BIN  use these binaries instead of the npm-pinned ones
#   CHAIN_TIMEOUT        seconds to wait for anvil to answer (default: 30)

CHAIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FOUNDRY_BIN_DIR="$CHAIN_DIR/node_modules/@foundry-rs"
ANVIL="${ANVIL_BIN:-$FOUNDRY_BIN_DIR/anvil-linux-amd64/bin/anvil}"
CAST="${CAST_BIN:-$FOUNDRY_BIN_DIR/cast-linux-amd64/bin/cast}"
CHAIN_TIMEOUT="${CHAIN_TIMEOUT:-30}"

# Anvil's well-known dev account 0 (mnemonic "test test ... junk", m/44'/60'/0'/0/0).
DEV0_ADDRESS=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
DEV0_PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
export DEV0_ADDRESS DEV0_PRIVATE_KEY

say() { echo "chain: $*" >&2; }
die() { echo "chain: error: $*" >&2; exit 1; }

_chain_install() {
  local marker
  # The marker names the lockfile's checksum, so a changed lockfile reinstalls
  # (npm ci empties node_modules, marker included).
  marker="$CHAIN_DIR/node_modules/.mpp-chain-installed-$(cksum <"$CHAIN_DIR/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$marker" ]]; then
    if [[ -z "${ANVIL_BIN:-}" || -z "${CAST_BIN:-}" ]]; then
      [[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] \
        || die "the pinned anvil/cast are linux-amd64 only; set ANVIL_BIN and CAST_BIN"
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found (needed once: npm ci --prefix $CHAIN_DIR)"
    say "installing pinned anvil, cast and solc (npm ci --prefix $CHAIN_DIR)"
    npm ci --prefix "$CHAIN_DIR" --no-audit --no-fund >&2 \
      || die "npm ci --prefix $CHAIN_DIR failed (see above)"
    touch "$marker"
  fi
  # npm keeps the tarballs' modes, but make sure anyway.
  local bin
  for bin in "$FOUNDRY_BIN_DIR/anvil-linux-amd64/bin/anvil" "$FOUNDRY_BIN_DIR/cast-linux-amd64/bin/cast"; do
    if [[ -f "$bin" && ! -x "$bin" ]]; then
      chmod +x "$bin"
    fi
  done
}

# Installs node_modules once; several test processes may call this at once.
chain_ensure_installed() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CHAIN_DIR/.install.lock"
    flock 9
    _chain_install
    flock -u 9
    exec 9>&-
  else
    _chain_install
  fi
  [[ -x "$ANVIL" ]] || die "anvil not executable at $ANVIL"
  [[ -x "$CAST" ]] || die "cast not executable at $CAST"
}

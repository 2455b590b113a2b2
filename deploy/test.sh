#!/usr/bin/env bash
# The one command that runs every test of the platform, from a fresh Debian 12 machine with a
# Rust toolchain: installs what the tests need (as root), then builds, lints and tests the whole
# workspace, including the end-to-end suite that pushes real apps into runc containers.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "the tests start containers, networks and databases: run as root (sudo $0)" >&2
  exit 1
fi
deploy/test-deps.sh
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The stacks the container tests run on (bookworm; trixie for Go apps): debootstrapped once,
# then cached.
PAAS_TEST_STACK_DIR=${PAAS_TEST_STACK_DIR:-/var/cache/paas-test/stacks}
export PAAS_TEST_STACK_DIR
cargo run -q --locked -p paasd -- stack build --data-dir "$(dirname "$PAAS_TEST_STACK_DIR")"
cargo test --workspace --locked --no-fail-fast

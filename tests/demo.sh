#!/usr/bin/env bash
# README command 1: install what is needed on Debian 12, build and install the agents,
# then run the demo (for now: a virtual IP moving between two nodes in namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> installing system packages (apt) and Rust if missing"
bash tests/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "==> building the agents (cargo build --release)"
cargo build --release --locked
echo "==> installing them (paceline install)"
cargo run -q --release --locked --bin paceline -- install
echo "==> demo"
exec bash tests/demo_vip.sh

#!/usr/bin/env bash
# README command 1: install what is needed on Debian 12, build and install the agents,
# then run the lab demo: a 3-node Pacemaker + PostgreSQL cluster in namespaces, a
# switchover and a crash of the primary's PostgreSQL under a writer, and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> installing system packages (apt) and Rust if missing"
bash tests/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
echo "==> building the agents (cargo build --release)"
cargo build --release --locked
echo "==> installing them (paceline install)"
cargo run -q --release --locked --bin paceline -- install
echo "==> lab demo (paceline-lab demo): the paceline stack, then PAF's, about 5 minutes"
exec cargo run -q --release --locked --bin paceline-lab -- demo "$@"

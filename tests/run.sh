#!/usr/bin/env bash
# Run every paceline test on Debian 12, as root: installs the system packages, builds,
# runs unit and integration tests (network namespaces, Pacemaker tools, ocf-tester).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Namespaces from an interrupted earlier run of ours (their names start with "plt-"/"plp-").
for ns in $(ip netns list | awk '$1 ~ /^pl[tp]-[0-9]+-/ {print $1}'); do
    pid=${ns#pl?-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || ip netns del "$ns" || true
done
# Style gates first: they fail in seconds, before the long runs.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --bins
# Debian 13's root file system (cached): pcs 0.12 for tests/crm_examples.rs.
bash tests/lab/rootfs.sh >/dev/null
cargo test --locked -- --test-threads=4
# pgsqlms against real PostgreSQL on every other major (14, 16, 17, 18: upstream builds).
bash tests/pg_majors.sh
# The Debian package: built from this build, installed, described by pcs, removed clean.
bash tests/package.sh
bash -n tests/postgresql.sh tests/pg_majors.sh tests/demo.sh tests/demo_vip.sh tests/bench_ipaddr2.sh tests/bench_aws.sh tests/aws/bench_world.sh tests/bench_aws_vpc.sh tests/bench_fence.sh tests/lab/lab.sh tests/lab/bench.sh tests/lab/chain.sh tests/lab/bench_agents.sh tests/lab/bench_actions.sh tests/lab/bench_sync.sh tests/lab/bench_hang.sh tests/lab/bench_crash.sh tests/lab/bench_status.sh tests/package.sh tests/lab/bench_state.sh tests/lab/bench_multiaz.sh tests/lab/seed-pgsql-state.sh tests/lab/rootfs.sh tests/ocft/run.sh

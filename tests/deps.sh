#!/usr/bin/env bash
# Install what paceline's build, demo and tests need on Debian 12 (run as root).
# Idempotent: apt-get skips what is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    ca-certificates curl gcc libc6-dev pkg-config \
    iproute2 iputils-ping tcpdump libxml2-utils util-linux procps \
    pacemaker pacemaker-cli-utils pcs corosync resource-agents resource-agents-paf \
    postgresql-15 postgresql-client-15 strace hyperfine python3 psmisc \
    fence-agents python3-venv time haproxy man-db rpm rpmlint debootstrap \
    >/dev/null
# moto (fake EC2 for the AWS agents' tests), in its own venv; reused when already there.
# Pinned: the tests patch one moto behaviour (tests/aws/moto_server.py, tests/lab/ec2.py),
# and a CI run on a fresh machine must get the moto they were written against.
MOTO_VERSION=5.2.5
if ! /opt/paceline-moto/bin/python3 -c "import moto, moto.server, flask_cors; assert moto.__version__ == '$MOTO_VERSION'" >/dev/null 2>&1; then
    /usr/bin/python3 -m venv /opt/paceline-moto
    /opt/paceline-moto/bin/pip install -q "moto[server]==$MOTO_VERSION"
fi
# Rust: the machine's toolchain if there is one, else rustup (stable).
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
# The style gates of tests/run.sh: rustfmt and clippy (rustup's minimal profile has neither).
if [ -x "$HOME/.cargo/bin/rustup" ]; then
    "$HOME/.cargo/bin/rustup" component add clippy rustfmt >/dev/null 2>&1 || true
fi

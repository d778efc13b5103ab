#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (a real
# nats-server with JetStream), then runs the whole suite with cargo-nextest.
#   tests/run.sh            # everything
#   tests/run.sh -p bus     # extra arguments go to `cargo nextest run`
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_BIN=$(deploy/local/install-deps.sh)
export NATS_SERVER_BIN

cargo nextest run --workspace --no-fail-fast "$@"

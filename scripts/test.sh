#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), builds, runs every test.
# Used as-is by .ci/run. Debug builds only.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test clients (PyPI)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/python/requirements.txt

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== cargo fmt --check / clippy"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

echo "== cargo test (unit + Rust integration tests)"
cargo test --quiet

echo "== pytest (librdkafka / kafka-python against the real binary)"
export RAFTSTREAM_BIN="$CARGO_TARGET_DIR/debug/raftstream"
python3 -m pytest tests/python -q

#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), builds, runs every test.
# Used as-is by .ci/run. Debug builds only.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing build tools (Debian) and test clients (PyPI)"
# librdkafka (built from source by the rdkafka crate for the benchmark tool) needs cmake and
# curl headers; kcat is a test client.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)  # Debian's, on librdkafka 2.0.2: an old client
# The chaos harness puts every node in its own network namespace and cuts links with nftables.
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/python/requirements.txt

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# helm, pinned, for the chart tests (tests/python/test_deploy.py).
scripts/install-helm.sh "$CARGO_TARGET_DIR/tools"
export RAFTSTREAM_HELM="$CARGO_TARGET_DIR/tools/helm"

echo "== cargo fmt --check / clippy"
# Both ship with the machine's toolchain; a toolchain without them cannot fetch them here.
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; else echo "rustfmt not installed: skipped"; fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets --quiet -- -D warnings
else
    echo "clippy not installed: skipped"
fi

echo "== cargo test (unit + Rust integration tests)"
cargo test --workspace --quiet
# The benchmark tool and the chaos harness are workspace crates without integration tests of
# their own: cargo test builds no binaries of theirs, and the Python tests run both.
cargo build --workspace --bins --quiet

echo "== client suites: librdkafka's test-runner and rskafka's integration tests (built once, cached)"
# Built before pytest so their compile time is not spent inside a test's timeout; the runs are
# tests/python/test_suites.py.
scripts/librdkafka-tests.sh build
scripts/rskafka-tests.sh build

echo "== pytest (librdkafka / kafka-python / aiokafka against the real binary)"
export RAFTSTREAM_BIN="$CARGO_TARGET_DIR/debug/raftstream"
export RAFTSTREAM_BENCH_BIN="$CARGO_TARGET_DIR/debug/raftstream-bench"
export RAFTSTREAM_CHAOS_BIN="$CARGO_TARGET_DIR/debug/raftstream-chaos"
python3 -m pytest tests/python -q

#!/usr/bin/env bash
# Runs rskafka's own integration tests (tests/{client,consumer,producer,produce_consume}.rs of the
# rskafka crate our dev-dependency resolves to) against a Kafka-compatible broker.
#
#   scripts/rskafka-tests.sh build            # build the test binaries (cached), check the skip list
#   scripts/rskafka-tests.sh run HOST:PORT    # build if needed, then run them against HOST:PORT
#
# tests/python/test_suites.py starts the broker (port 0, fresh data dir, identity checked) with
# auto.create.topics.enable=false: rskafka's Metadata v4 asks for auto-creation, and
# test_non_existing_partition expects an unknown topic to stay unknown (rskafka's own CI runs
# Kafka and Redpanda that way too). Nothing may listen on localhost:9000
# (test_client_backoff_terminates expects that connection to fail; it is skipped, with a
# warning, if the port is taken).
#
# Excluded tests, one per line with the reason: tests/suites/rskafka.skip (RSKAFKA_SKIP_FILE
# overrides). Exit status 0 only if every chosen test passed.
#
# Knobs: RSKAFKA_VERSION (default: from Cargo.lock), RSKAFKA_TEST_TIMEOUT (seconds per test
# binary, default 600), RSKAFKA_TEST_THREADS (libtest --test-threads; default libtest's).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
skip_file="${RSKAFKA_SKIP_FILE:-$root/tests/suites/rskafka.skip}"
outer_target="${CARGO_TARGET_DIR:-$root/target}"
cache="$outer_target/rskafka-tests"      # everything this script keeps between runs
copy="$cache/src"                        # writable copy of the crate
inner_target="$cache/target"             # its own target dir (own Cargo.lock, own build lock)
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
per_binary_timeout="${RSKAFKA_TEST_TIMEOUT:-600}"

mode="${1:-}"
case "$mode" in
    build) [ $# -eq 1 ] || { echo "usage: $0 build | run HOST:PORT" >&2; exit 2; } ;;
    run) [ $# -eq 2 ] || { echo "usage: $0 build | run HOST:PORT" >&2; exit 2; }; connect="$2" ;;
    *) echo "usage: $0 build | run HOST:PORT" >&2; exit 2 ;;
esac
[ -f "$skip_file" ] || { echo "no skip list at $skip_file" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
echo "== locating the rskafka crate"
version="${RSKAFKA_VERSION:-$(awk '/^name = "rskafka"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")}"
[ -n "$version" ] || { echo "rskafka not in $root/Cargo.lock; set RSKAFKA_VERSION" >&2; exit 2; }

find_source() {
    src_dir="" crate_file=""
    local d f
    for d in "$cargo_home"/registry/src/*/"rskafka-$version"; do
        [ -f "$d/Cargo.toml" ] && { src_dir="$d"; return 0; }
    done
    for f in "$cargo_home"/registry/cache/*/"rskafka-$version.crate"; do
        [ -f "$f" ] && { crate_file="$f"; return 0; }
    done
    return 1
}
if ! find_source; then
    # Downloads (does not compile) the dependencies of our own lock file, rskafka among them.
    (cd "$root" && cargo fetch --locked)
    find_source || { echo "rskafka-$version neither unpacked nor cached under $cargo_home/registry" >&2; exit 1; }
fi
origin="${src_dir:-$crate_file}"
echo "rskafka $version from $origin"

# ---------------------------------------------------------------------------------------------
echo "== preparing the copy in $copy"
stamp="rskafka-$version $origin"
if [ ! -f "$copy/.rskafka-tests-copy" ] || [ "$(cat "$copy/.rskafka-tests-copy")" != "$stamp" ]; then
    rm -rf "$copy"
    mkdir -p "$copy"
    if [ -n "$src_dir" ]; then
        cp -a "$src_dir/." "$copy/"    # -a keeps the mtimes, so cargo does not rebuild needlessly
    else
        tar -xzf "$crate_file" -C "$copy" --strip-components=1
    fi
    chmod -R u+w "$copy"
    # rust-toolchain.toml pins channel 1.85: rustup would try to download it. Without the file the
    # toolchain is whatever applies to the directory (the machine's default / RUSTUP_TOOLCHAIN).
    rm -f "$copy/rust-toolchain.toml" "$copy/rust-toolchain"
    # dotenvy::dotenv() in the tests would read a .env from the crate dir or any parent.
    rm -f "$copy/.env"
    # Its own workspace root, so cargo never takes it for a member of a workspace above it.
    grep -q '^\[workspace\]' "$copy/Cargo.toml" || printf '\n[workspace]\n' >> "$copy/Cargo.toml"
    # The lock's rsasl 2.2.0 no longer compiles with this toolchain ("raw pointer casts of trait
    # objects cannot extend lifetimes", rust-lang/rust#141402): take the newest rsasl 2.x.
    (cd "$copy" && CARGO_TARGET_DIR="$inner_target" cargo update --quiet -p rsasl)
    echo "$stamp" > "$copy/.rskafka-tests-copy"
fi

# ---------------------------------------------------------------------------------------------
echo "== building rskafka's integration tests (first run: ~200 crates and librdkafka 2.3.0 from C)"
# Default features = the four compression codecs, written out; no transport-tls/-socks5, so
# test_tls and test_socks5 are not compiled. Only the four targets holding tests: the helper
# targets (test_helpers, java_helper, rdkafka_helper) have none.
features=(--no-default-features --features compression-gzip,compression-lz4,compression-snappy,compression-zstd)
targets=(--test client --test consumer --test producer --test produce_consume)
# A CI-wide RUSTFLAGS (say -D warnings) must not turn rskafka's warnings under a newer rustc
# into errors; nor should it change the fingerprints of this separate build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
(
    cd "$copy"
    # The crate's own Cargo.lock, exactly (--locked): rdkafka 0.35.0 / rdkafka-sys 4.8.0+2.3.0,
    # j4rs 0.20.0, tokio 1.44.1 ... Needs crates.io on the first run.
    CARGO_TARGET_DIR="$inner_target" cargo fetch --locked
    CARGO_TARGET_DIR="$inner_target" cargo test --locked "${features[@]}" "${targets[@]}" \
        --no-run --message-format=json-render-diagnostics > "$cache/build.jsonl"
)
bins=()
mapfile -t bins < <(python3 - "$cache/build.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + "\t" + m["executable"])
EOF
)
[ ${#bins[@]} -eq 4 ] || { echo "expected 4 test binaries, got ${#bins[@]}: ${bins[*]}" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
echo "== checking the skip list against the tests"
skips=()
mapfile -t skips < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$skip_file" | grep -v '^$')
all_tests=()
for entry in "${bins[@]}"; do
    exe="${entry#*$'\t'}"
    mapfile -t -O "${#all_tests[@]}" all_tests < <(cd "$copy" && "$exe" --list --format terse | sed -n 's/: test$//p')
done
listed() { local x; for x in "${@:2}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
bad=0
for s in "${skips[@]}"; do
    listed "$s" "${all_tests[@]}" || { echo "skip list names a test that does not exist: $s" >&2; bad=1; }
done
for t in "${all_tests[@]}"; do
    # TEST_JAVA_INTEROPT is set below: an unlisted Java test would start a JVM and hit Maven Central.
    case "$t" in *java*) listed "$t" "${skips[@]}" || { echo "Java test not in the skip list: $t" >&2; bad=1; } ;; esac
done
[ "$bad" -eq 0 ] || exit 1
if (exec 3<>/dev/tcp/localhost/9000) 2>/dev/null; then
    echo "warning: something listens on localhost:9000; skipping test_client_backoff_terminates" >&2
    skips+=(test_client_backoff_terminates)
fi
echo "${#all_tests[@]} tests, ${#skips[@]} skipped, $(( ${#all_tests[@]} - ${#skips[@]} )) to run"

# ---------------------------------------------------------------------------------------------
[ "$mode" = build ] && exit 0

# ---------------------------------------------------------------------------------------------
echo "== running rskafka's integration tests against $connect"
export TEST_INTEGRATION=1          # tests return early (and pass!) without it
export KAFKA_CONNECT="$connect"    # bootstrap list for rskafka and for rdkafka's bootstrap.servers
export TEST_BROKER_IMPL=kafka      # required; "kafka" = broker supports DeleteRecords
export TEST_JAVA_INTEROPT=1        # only to unlock test_produce_rdkafka_consume_rdkafka_nocompression;
                                   # every Java test is in the skip list (checked above)
unset KAFKA_SASL_CONNECT SOCKS5_PROXY SOCKS_PROXY
export RUST_BACKTRACE=1
args=(--exact --show-output)
for s in "${skips[@]}"; do args+=(--skip "$s"); done
[ -n "${RSKAFKA_TEST_THREADS:-}" ] && args+=(--test-threads "$RSKAFKA_TEST_THREADS")

failed=()
for entry in "${bins[@]}"; do
    name="${entry%%$'\t'*}" exe="${entry#*$'\t'}"
    echo "-- tests/$name.rs"
    log="$cache/$name.log"
    if ! (cd "$copy" && timeout --kill-after=10 "$per_binary_timeout" "$exe" "${args[@]}") 2>&1 | tee "$log"; then
        failed+=("$name")
    # A test that skipped itself passes silently; with the environment above none should.
    elif grep -q -e 'skipping Kafka integration tests' -e 'Skipping due to missing delete support' "$log"; then
        echo "tests/$name.rs: some tests skipped themselves (environment not seen?)" >&2
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== rskafka integration tests FAILED in: ${failed[*]} (logs in $cache/*.log)" >&2
    exit 1
fi
echo "== rskafka integration tests passed"

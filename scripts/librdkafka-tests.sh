#!/usr/bin/env bash
# Runs librdkafka's own test suite (tests/test-runner from the rdkafka-sys crate source)
# against a running Kafka-compatible broker.
#
# Usage: librdkafka-tests.sh build
#        librdkafka-tests.sh run HOST:PORT LIST_FILE
#   build      builds the test-runner (once; cached) and exits (scripts/test.sh does this).
#   HOST:PORT  bootstrap address of the broker; it must advertise the same address, have
#              auto.create.topics.enable=true and num.partitions=4 (librdkafka's "default"
#              scenario). tests/python/test_suites.py starts such a broker on port 0.
#   LIST_FILE  one 4-digit test number per line, '#' starts a comment; a number followed by
#              the word "serial" runs in a test-runner process of its own, after the shared
#              pass (such processes run beside each other): tests that close sockets underneath
#              librdkafka, where a closed fd number is reused by another test's new socket in
#              the same process, which then reads garbage ("Invalid response size 0"). A number
#              followed by "alone" runs last, with nothing beside it (timing-sensitive tests).
#
# Builds librdkafka (static+shared, no SSL/SASL/curl) and tests/test-runner once into
#   $LIBRDKAFKA_TESTS_DIR (default: ${CARGO_TARGET_DIR:-./target}/librdkafka-tests)
# and skips the build when the runner exists and the stamp (source version + flags) matches.
#
# Environment knobs:
#   LIBRDKAFKA_SRC           librdkafka source dir (default: found in the cargo registry)
#   LIBRDKAFKA_TESTS_PARALLEL  tests run at once in the shared pass (-pN), default 8: the
#                            tests mostly wait (client timeouts, rebalances), not compute
#   LIBRDKAFKA_TESTS_FULL=1  don't pass -Q (quick mode); runs far more data and 0082,
#                            but also 0113's Java interop subtest (fails without Java)
#   LIBRDKAFKA_TESTS_NO_LOCAL=1  pass -L: skip TEST_F_LOCAL (mock / no-broker) tests
#   LIBRDKAFKA_TESTS_TIMEOUT overall wall-clock limit in seconds (default 1200)
#   LIBRDKAFKA_TESTS_TIMEOUT_MULTIPLIER  test.timeout.multiplier in test.conf (default 1.0;
#                            the runner adds +2 when CI is set and +parallel/3)
#   CI                       defaults to "true" here: timing assertions only warn, 0055's
#                            latency test skips, request.timeout.ms=10000
# Exit status: 0 only if every listed test passed or skipped itself.
set -euo pipefail

usage() { echo "usage: $0 build | run HOST:PORT LIST_FILE" >&2; exit 2; }
MODE="${1:-}"
case "$MODE" in
    build) [ $# -eq 1 ] || usage ;;
    run) [ $# -eq 3 ] || usage
         BROKER="$2"
         LIST="$3"
         [ -r "$LIST" ] || { echo "cannot read list file $LIST" >&2; exit 2; } ;;
    *) usage ;;
esac

RDKAFKA_SYS_VERSION="4.10.0+2.12.1"
CACHE="${LIBRDKAFKA_TESTS_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/librdkafka-tests}"
BUILD="$CACHE/librdkafka"
RUNNER="$BUILD/tests/test-runner"
STAMP="$BUILD/.raftstream-build-stamp"
PARALLEL="${LIBRDKAFKA_TESTS_PARALLEL:-8}"
JOBS="$(nproc 2>/dev/null || echo 2)"
# No SSL/SASL/curl: every test that needs them skips itself. zlib and zstd for 0017.
# lz4 and snappy are built in. --enable-zlib/--enable-zstd fail loudly if headers are missing.
CONFIGURE_FLAGS=(--disable-ssl --disable-gssapi --disable-curl --enable-zlib --enable-zstd
                 --disable-lz4-ext)
BUILD_REV=1  # bump when this script's build steps change

# ---------------------------------------------------------------------------------------
# Source
SRC="${LIBRDKAFKA_SRC:-}"
if [ -z "$SRC" ]; then
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-"$RDKAFKA_SYS_VERSION"/librdkafka; do
        if [ -f "$d/tests/test.c" ]; then SRC="$d"; break; fi
    done
fi
if [ -z "$SRC" ] || [ ! -f "$SRC/tests/test.c" ]; then
    echo "librdkafka source (rdkafka-sys $RDKAFKA_SYS_VERSION) not found in the cargo registry;" \
         "build the workspace (cargo build --workspace) first (or set LIBRDKAFKA_SRC)" >&2
    exit 2
fi
SRC_VERSION="$(grep -m1 '^#define RD_KAFKA_VERSION ' "$SRC/src/rdkafka.h" | awk '{print $3}')"
WANT_STAMP="rdkafka-sys=$RDKAFKA_SYS_VERSION librdkafka=$SRC_VERSION rev=$BUILD_REV flags=${CONFIGURE_FLAGS[*]}"

# ---------------------------------------------------------------------------------------
# Build (idempotent)
if [ -x "$RUNNER" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ]; then
    echo "== librdkafka test-runner up to date ($WANT_STAMP)"
else
    echo "== building librdkafka $SRC_VERSION and its test-runner into $BUILD"
    # Debian packages the build needs (compilers, make, python3 and zlib1g-dev are usually there).
    missing=()
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    dpkg -s zlib1g-dev >/dev/null 2>&1 || missing+=(zlib1g-dev)
    dpkg -s libzstd-dev >/dev/null 2>&1 || missing+=(libzstd-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # mklove cannot build out of tree, and the registry copy is shared: build in a copy.
    # The copy is configured in place (Makefile.config may hold absolute paths), and the
    # stamp is written last, so an interrupted build is redone from scratch next time.
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    cp -a "$SRC/." "$BUILD/"
    (
        cd "$BUILD"
        ./configure "${CONFIGURE_FLAGS[@]}" > "$CACHE/configure.log" 2>&1 \
            || { tail -n 40 "$CACHE/configure.log" >&2; exit 1; }
        make -j"$JOBS" libs > "$CACHE/make-libs.log" 2>&1 \
            || { tail -n 60 "$CACHE/make-libs.log" >&2; exit 1; }
        # 'build' only; plain 'make -C tests' would also RUN the whole suite.
        make -j"$JOBS" -C tests build > "$CACHE/make-tests.log" 2>&1 \
            || { tail -n 60 "$CACHE/make-tests.log" >&2; exit 1; }
    )
    [ -x "$RUNNER" ] || { echo "build finished without $RUNNER" >&2; exit 1; }
    echo "$WANT_STAMP" > "$STAMP"
fi

[ "$MODE" = build ] && exit 0

# ---------------------------------------------------------------------------------------
# Test selection: the parallel numbers, then the serial ones.
NUMS=()
SERIAL=()
ALONE=()
while read -r n tag _; do
    [ -n "$n" ] || continue
    [[ "$n" =~ ^[0-9]{4}$ ]] || { echo "bad test number '$n' in $LIST" >&2; exit 2; }
    case "$tag" in
        serial) SERIAL+=("$n") ;;
        alone) ALONE+=("$n") ;;
        "") NUMS+=("$n") ;;
        *) echo "bad tag '$tag' after $n in $LIST" >&2; exit 2 ;;
    esac
done < <(sed -e 's/#.*//' "$LIST")
[ $(( ${#NUMS[@]} + ${#SERIAL[@]} + ${#ALONE[@]} )) -gt 0 ] || { echo "no tests listed in $LIST" >&2; exit 2; }

RUN="$(mktemp -d "${TMPDIR:-/tmp}/librdkafka-run.XXXXXX")"
printf 'bootstrap.servers=%s\ntest.timeout.multiplier=%s\n' "$BROKER" \
    "${LIBRDKAFKA_TESTS_TIMEOUT_MULTIPLIER:-1.0}" > "$RUN/test.conf"
strip() { sed -e 's/\x1b\[[0-9;]*m//g'; }
RC=0

# run_pass NAME PARALLELISM NUMBER...: one test-runner run; NAME.log, NAME.json, NAME.out
# (what it reports) and NAME.rc (its exit status) in $RUN.
run_pass() {
    local name="$1"
    local rc=0
    run_pass_inner "$@" > "$RUN/$name.out" 2>&1 || rc=$?
    echo "$rc" > "$RUN/$name.rc"
}

run_pass_inner() {
    local name="$1" parallel="$2"
    shift 2
    # The runner matches each test's number as a substring of TESTS; 4-digit numbers joined
    # by commas cannot match across entries.
    local csv
    csv="$(IFS=,; echo "$*")"
    local args=("-p$parallel")
    [ "${LIBRDKAFKA_TESTS_FULL:-0}" = 1 ] || args+=(-Q)
    [ "${LIBRDKAFKA_TESTS_NO_LOCAL:-0}" = 1 ] && args+=(-L)
    echo "== librdkafka test-runner ($name) against $BROKER: $# test numbers, args ${args[*]}"
    echo "   log: $RUN/$name.log"
    local rc=0
    (
        cd "$BUILD/tests"   # relative paths (fixtures, ../src/statistics_schema.json)
        export LD_LIBRARY_PATH="$BUILD/src:$BUILD/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export RDKAFKA_TEST_CONF="$RUN/test.conf"
        export TESTS="$csv"
        export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.9.0}"
        export TEST_SCENARIO=default
        export TEST_REPORT="$RUN/$name.json"
        export RDKAFKA_GITVER="$SRC_VERSION"
        export CI="${CI:-true}"
        unset TESTS_SKIP SUBTESTS TEST_CONSUMER_GROUP_PROTOCOL KAFKA_PATH BROKERS ZK_ADDRESS
        # sockem (the suite's socket emulation) forwards with send() without MSG_NOSIGNAL: a
        # connection it closes on purpose must give EPIPE, not kill the runner with SIGPIPE.
        trap '' PIPE
        # SIGINT makes the runner stop, print its summary and write the report.
        exec timeout -s INT -k 60 "${LIBRDKAFKA_TESTS_TIMEOUT:-1200}" ./test-runner "${args[@]}"
    ) > "$RUN/$name.log" 2>&1 || rc=$?
    echo "   runner exit $rc"
    echo "== failure lines ($name)"
    # Format: '### Test "NAME (subtest)" failed at FILE:LINE:FUNC() at DATE: ###' + reason line.
    strip < "$RUN/$name.log" | grep -A1 '^### Test ".*" failed at ' | grep -v '^--$' || echo "(none)"
    if [ "$rc" -ne 0 ] && [ ! -f "$RUN/$name.json" ]; then
        echo "== no report from the $name run; its last lines:"
        strip < "$RUN/$name.log" | tail -n 40
    fi
    return "$rc"
}

# The shared pass; then each "serial" test in its own process, those processes side by side;
# then the "alone" ones, one after another.
PASSES=()
if [ ${#NUMS[@]} -gt 0 ]; then
    run_pass parallel "$PARALLEL" "${NUMS[@]}"
    PASSES+=(parallel)
fi
for n in "${SERIAL[@]}"; do
    run_pass "own-$n" 1 "$n" &
    PASSES+=("own-$n")
done
wait
for n in "${ALONE[@]}"; do
    run_pass "alone-$n" 1 "$n"
    PASSES+=("alone-$n")
done
for name in "${PASSES[@]}"; do
    cat "$RUN/$name.out"
    rc="$(cat "$RUN/$name.rc")"
    [ "$rc" -eq 0 ] || RC=$rc
done

# Count the listed numbers from the JSON reports; print one line per test that did not pass.
python3 - "$RUN" "${NUMS[@]}" "${SERIAL[@]}" "${ALONE[@]}" <<'PY'
import glob, json, os, sys
run, nums = sys.argv[1], set(sys.argv[2:])
passed = failed = skipped = 0
seen = set()
# A test appears in every pass's report, SKIPPED where that pass did not select it: its state
# is the one from the pass that ran it.
state_of = {}
for path in sorted(glob.glob(os.path.join(run, "*.json"))):
    with open(path) as f:
        tests = json.load(f).get("tests", {})
    for test, t in tests.items():
        if test[:4] in nums and (test not in state_of or state_of[test][0] == "SKIPPED"):
            state_of[test] = (t.get("state"), t.get("extra", ""))
for test, (state, extra) in sorted(state_of.items()):
    seen.add(test[:4])
    if state == "PASSED":
        passed += 1
    elif state == "SKIPPED":
        skipped += 1
    else:  # FAILED, RUNNING (timed out) or DNS (never started: the run was cut short)
        failed += 1
        print(f"== {test}: {state} {extra}".rstrip())
for n in sorted(nums - seen):  # listed but never run: a typo, or gone from this librdkafka
    failed += 1
    print(f"== {n}: not in any report")
with open(os.path.join(run, "counts"), "w") as f:
    f.write(f"{passed} {failed} {skipped}\n")
PY
read -r NPASS NFAIL NSKIP < "$RUN/counts"
echo "librdkafka: $NPASS passed, $NFAIL failed, $NSKIP skipped"
if [ "$RC" -ne 0 ] || [ "$NFAIL" -ne 0 ] || [ "$NPASS" -eq 0 ]; then
    exit 1
fi

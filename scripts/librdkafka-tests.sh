#!/usr/bin/env bash
# Runs librdkafka's own test suite (tests/test-runner from the rdkafka-sys crate source)
# against a running Kafka-compatible broker.
#
# Usage: librdkafka-tests.sh HOST:PORT LIST_FILE
#   HOST:PORT  bootstrap address of the broker; it must advertise the same address, have
#              auto.create.topics.enable=true and num.partitions=4 (librdkafka's "default"
#              scenario), e.g. RAFTSTREAM_NUM_PARTITIONS=4 raftstream --listen 127.0.0.1:P
#              --advertise 127.0.0.1:P --http-listen "" --data-dir "$(mktemp -d)"
#   LIST_FILE  one 4-digit test number per line, '#' starts a comment.
#
# Builds librdkafka (static+shared, no SSL/SASL/curl) and tests/test-runner once into
#   $LIBRDKAFKA_TESTS_DIR (default: ${CARGO_TARGET_DIR:-./target}/librdkafka-tests)
# and skips the build when the runner exists and the stamp (source version + flags) matches.
#
# Environment knobs:
#   LIBRDKAFKA_SRC           librdkafka source dir (default: found in the cargo registry)
#   LIBRDKAFKA_TESTS_PARALLEL  tests run at once (-pN), default 3
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

if [ $# -ne 2 ]; then
    echo "usage: $0 HOST:PORT LIST_FILE" >&2
    exit 2
fi
BROKER="$1"
LIST="$2"
[ -r "$LIST" ] || { echo "cannot read list file $LIST" >&2; exit 2; }

RDKAFKA_SYS_VERSION="4.10.0+2.12.1"
CACHE="${LIBRDKAFKA_TESTS_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/librdkafka-tests}"
BUILD="$CACHE/librdkafka"
RUNNER="$BUILD/tests/test-runner"
STAMP="$BUILD/.raftstream-build-stamp"
PARALLEL="${LIBRDKAFKA_TESTS_PARALLEL:-3}"
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
         "build with --features bench first (or set LIBRDKAFKA_SRC)" >&2
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

# ---------------------------------------------------------------------------------------
# Test selection
mapfile -t NUMS < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$LIST" | grep -v '^$' || true)
for n in "${NUMS[@]}"; do
    [[ "$n" =~ ^[0-9]{4}$ ]] || { echo "bad test number '$n' in $LIST" >&2; exit 2; }
done
if [ ${#NUMS[@]} -eq 0 ]; then
    echo "no tests listed in $LIST" >&2
    exit 2
fi
# The runner matches each test's number as a substring of TESTS; 4-digit numbers joined by
# commas cannot match across entries.
TESTS_CSV="$(IFS=,; echo "${NUMS[*]}")"

ARGS=("-p$PARALLEL")
[ "${LIBRDKAFKA_TESTS_FULL:-0}" = 1 ] || ARGS+=(-Q)
[ "${LIBRDKAFKA_TESTS_NO_LOCAL:-0}" = 1 ] && ARGS+=(-L)

RUN="$(mktemp -d "${TMPDIR:-/tmp}/librdkafka-run.XXXXXX")"
cat > "$RUN/test.conf" <<EOF
bootstrap.servers=$BROKER
test.timeout.multiplier=${LIBRDKAFKA_TESTS_TIMEOUT_MULTIPLIER:-1.0}
EOF
LOG="$RUN/test-runner.log"
REPORT="$RUN/report.json"

echo "== librdkafka test-runner against $BROKER: ${#NUMS[@]} test numbers, args ${ARGS[*]}"
echo "   log: $LOG"
set +e
(
    cd "$BUILD/tests"   # relative paths (fixtures, ../src/statistics_schema.json)
    export LD_LIBRARY_PATH="$BUILD/src:$BUILD/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export RDKAFKA_TEST_CONF="$RUN/test.conf"
    export TESTS="$TESTS_CSV"
    export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.9.0}"
    export TEST_SCENARIO=default
    export TEST_REPORT="$REPORT"
    export RDKAFKA_GITVER="$SRC_VERSION"
    export CI="${CI:-true}"
    unset TESTS_SKIP SUBTESTS TEST_CONSUMER_GROUP_PROTOCOL KAFKA_PATH BROKERS ZK_ADDRESS
    # sockem (the suite's socket emulation) forwards with send() without MSG_NOSIGNAL: a
    # connection it closes on purpose must give EPIPE, not kill the runner with SIGPIPE.
    trap '' PIPE
    # SIGINT makes the runner stop, print its summary and write the report.
    exec timeout -s INT -k 60 "${LIBRDKAFKA_TESTS_TIMEOUT:-1200}" ./test-runner "${ARGS[@]}"
) > "$LOG" 2>&1
RC=$?
set -e

strip() { sed -e 's/\x1b\[[0-9;]*m//g'; }

echo "== failure lines"
# Format: '### Test "NAME (subtest)" failed at FILE:LINE:FUNC() at DATE: ###' + reason line.
strip < "$LOG" | grep -A1 '^### Test ".*" failed at ' | grep -v '^--$' || echo "(none)"
echo "== runner summary"
# The runner may print the table more than once (on a test timeout): keep the last one.
strip < "$LOG" | awk '/^TEST [0-9]+ \(.*\) SUMMARY$/ {buf = ""; next}
                      /^\| / {buf = buf $0 "\n"} END {printf "%s", buf}' || true

# Count only the listed numbers, from the JSON report.
COUNTS="$(python3 - "$REPORT" "$TESTS_CSV" <<'PY' 2>&1
import json, sys
path, nums = sys.argv[1], set(sys.argv[2].split(","))
try:
    with open(path) as f:
        rep = json.load(f)
except Exception as e:
    print("NOREPORT %s" % e)
    sys.exit(0)
p = fl = s = 0
bad = []
for name, t in rep.get("tests", {}).items():
    if name[:4] not in nums:
        continue
    st = t.get("state")
    if st == "PASSED":
        p += 1
    elif st == "SKIPPED":
        s += 1
    else:  # FAILED, RUNNING (timed out) or DNS (never started: run interrupted)
        fl += 1
        bad.append("%s(%s)" % (name, st))
print("%d %d %d %s" % (p, fl, s, " ".join(bad)))
PY
)"
if [[ "$COUNTS" == NOREPORT* ]]; then
    echo "== no test report ($COUNTS); runner exit $RC; last log lines:"
    strip < "$LOG" | tail -n 60
    echo "librdkafka: 0 passed, 1 failed"
    exit 1
fi
read -r NPASS NFAIL NSKIP BAD <<<"$COUNTS" || true
if ! [[ "${NPASS:-}" =~ ^[0-9]+$ && "${NFAIL:-}" =~ ^[0-9]+$ ]]; then
    echo "== could not read the report: $COUNTS"
    echo "librdkafka: 0 passed, 1 failed"
    exit 1
fi
if [ -n "${BAD:-}" ]; then echo "== failed: $BAD"; fi
if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
    echo "== overall timeout (${LIBRDKAFKA_TESTS_TIMEOUT:-1200} s) hit"
fi
echo "librdkafka: $NPASS passed, $NFAIL failed, $NSKIP skipped"
if [ "$RC" -ne 0 ] || [ "$NFAIL" -ne 0 ] || [ "$NPASS" -eq 0 ]; then
    exit 1
fi
exit 0

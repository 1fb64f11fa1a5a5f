"""Client projects' own test suites against a fresh raftstream (issue 14, items 7 and 9):
librdkafka's test-runner (from the rdkafka-sys crate's source) with the allow-list in
tests/suites/librdkafka.list, and rskafka's integration tests (from its crate) minus
tests/suites/rskafka.skip. scripts/test.sh builds both first; a test here builds what is
missing. Failing tests' failure lines are in the assertion message."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from broker import Broker

ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))


def run_suite(args, timeout_s, env_extra):
    """Runs a suite script in its own process group (a timeout kills the suite's own processes
    too); returns (exit code, its output)."""
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET, **env_extra)
    p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out += f"\n== the suite did not finish within {timeout_s} s"
    return p.returncode, out


def summary(output, keep=("### Test", "failed", "FAILED", "== ", "librdkafka:", "test result", "panicked")):
    """The lines of a suite's output that say what failed."""
    lines = [line for line in output.splitlines() if any(k in line for k in keep)]
    return "\n".join(lines[-200:])


@pytest.mark.timeout(1800)
def test_librdkafka_suite(tmp_path):
    # librdkafka's "default" test scenario: auto-creation on, 4 partitions per new topic.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_NUM_PARTITIONS": "4"}).start()
    # Each of the two runner passes gets at most 12 minutes, inside this test's budget.
    code, out = run_suite(["scripts/librdkafka-tests.sh", "run", b.bootstrap, "tests/suites/librdkafka.list"], 1700,
                          {"LIBRDKAFKA_TESTS_TIMEOUT": "720"})
    print(out[-30000:])
    assert b.proc.poll() is None, "the broker died:\n" + "\n".join(b.lines[-30:])
    assert code == 0, summary(out)
    assert "panicked" not in b.log_text()
    b.kill()


@pytest.mark.timeout(1200)
def test_rskafka_suite(tmp_path):
    # rskafka's test_non_existing_partition expects an unknown topic to stay unknown.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_AUTO_CREATE_TOPICS_ENABLE": "false"}).start()
    code, out = run_suite(["scripts/rskafka-tests.sh", "run", b.bootstrap], 1100, {"RSKAFKA_TEST_TIMEOUT": "240"})
    print(out[-30000:])
    assert b.proc.poll() is None, "the broker died:\n" + "\n".join(b.lines[-30:])
    assert code == 0, summary(out)
    assert "test result: ok" in out, "no test ran"
    assert "panicked" not in b.log_text()
    b.kill()

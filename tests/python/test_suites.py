"""Client projects' own test suites against a fresh raftstream (issue 14, items 7 and 9):
librdkafka's test-runner (from the rdkafka-sys crate's source) with the allow-list in
tests/suites/librdkafka.list, and rskafka's integration tests (from its crate) minus
tests/suites/rskafka.skip. scripts/test.sh builds both first; a test here builds what is
missing. Failing tests' failure lines are in the assertion message."""

import os
import subprocess
from pathlib import Path

import pytest

from broker import Broker

ROOT = Path(__file__).resolve().parents[2]
TARGET = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))


def run_suite(args, timeout_s):
    """Runs a suite script; returns (exit code, its output)."""
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET)
    r = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout_s)
    return r.returncode, r.stdout


def summary(output, keep=("### Test", "failed", "FAILED", "== ", "librdkafka:", "test result", "panicked")):
    """The lines of a suite's output that say what failed."""
    lines = [line for line in output.splitlines() if any(k in line for k in keep)]
    return "\n".join(lines[-200:])


@pytest.mark.timeout(1800)
def test_librdkafka_suite(tmp_path):
    # librdkafka's "default" test scenario: auto-creation on, 4 partitions per new topic.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_NUM_PARTITIONS": "4"}).start()
    code, out = run_suite(["scripts/librdkafka-tests.sh", "run", b.bootstrap, "tests/suites/librdkafka.list"], 1700)
    print(out[-30000:])
    assert b.proc.poll() is None, "the broker died:\n" + "\n".join(b.lines[-30:])
    assert code == 0, summary(out)
    assert "panicked" not in b.log_text()
    b.kill()


@pytest.mark.timeout(1200)
def test_rskafka_suite(tmp_path):
    # rskafka's test_non_existing_partition expects an unknown topic to stay unknown.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_AUTO_CREATE_TOPICS_ENABLE": "false"}).start()
    code, out = run_suite(["scripts/rskafka-tests.sh", "run", b.bootstrap], 1100)
    print(out[-30000:])
    assert b.proc.poll() is None, "the broker died:\n" + "\n".join(b.lines[-30:])
    assert code == 0, summary(out)
    assert "test result: ok" in out, "no test ran"
    assert "panicked" not in b.log_text()
    b.kill()

"""A quick run of the benchmark tool against a fresh broker, so the tool keeps working.
No timing is asserted: only that every record was verified and the outputs were written."""

import json
import os
import subprocess
from pathlib import Path

BENCH = os.environ.get("RAFTSTREAM_BENCH_BIN", str(Path(__file__).resolve().parents[2] / "target" / "debug" / "raftstream-bench"))


def test_bench_tool_smoke(broker, tmp_path):
    out = tmp_path / "bench"
    cmd = [BENCH, "run", "--bootstrap", broker.bootstrap, "--records", "3000", "--partitions", "4",
           "--producers", "2", "--consumers", "2", "--record-size", "256", "--compression", "lz4",
           "--broker-pid", str(broker.proc.pid), "--name", "smoke", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verified     OK" in run.stdout, run.stdout
    result = json.loads((out / "smoke.json").read_text())
    assert result["records_acked"] == 3000 and result["records_consumed"] == 3000
    assert result["ack_latency"]["count"] == 3000 and result["e2e_latency"]["count"] == 3000
    assert result["broker_cpu_cores"] is not None
    assert (out / "smoke.svg").read_text().startswith("<svg")
